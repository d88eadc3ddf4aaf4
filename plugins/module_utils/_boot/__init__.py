# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the next boot gets: kernel argument edits, boot loader backends, their file formats.

Imports from _common and _host (private: see docs/decisions/module-utils-layout.md).
"""
