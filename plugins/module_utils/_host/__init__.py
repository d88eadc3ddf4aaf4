# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host as its files show it: CPU, PCI and USB devices, IOMMU and its groups, installed kernels,
the running command line, the readiness report.

Imports from _common, and _libvirt for the report's read-only connection (private: see
docs/decisions/module-utils-layout.md).
"""
