# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The check and diff attributes of every module that only reads (the *_info
    # modules, cpu_baseline): one wording, kept in one place. Each module still
    # states its own platform.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode returns the same result as a normal run.
  diff_mode:
    support: none
    details: Nothing is changed, so there is no diff.
'''
