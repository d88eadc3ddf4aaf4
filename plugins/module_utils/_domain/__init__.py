# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative domains: the option table, the model builder, domain XML, the semantic comparison,
converging, domain_info's summaries.

Imports from _common and _libvirt (private: see docs/decisions/module-utils-layout.md).
"""
