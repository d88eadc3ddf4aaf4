# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module needs, whatever it manages: typed errors, lazy imports, the host's files (HostFS),
the action recorder, atomic files, units and device identifiers, the end of main().

Imports nothing else from phyllome.os (private: see docs/decisions/module-utils-layout.md).
"""
