# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt edge: connections, the domain client, libvirt's capabilities XML. The only package that
calls libvirt-python.

Imports from _common only (private: see docs/decisions/module-utils-layout.md).
"""
