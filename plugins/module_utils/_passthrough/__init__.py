# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Giving PCI devices to vfio-pci: selection and safety, runtime binding, boot-time claims.

Imports from _common, _host and _boot (private: see docs/decisions/module-utils-layout.md).
"""
