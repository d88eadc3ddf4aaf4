# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The life shared by libvirt networks and storage pools (phyllome.os.network,
    # phyllome.os.storage_pool): defined, active, autostarted.
    DOCUMENTATION = r'''
options:
  name:
    description: The object's name (its C(<name>); added to O(xml) when O(xml) has none).
    type: str
    required: true
  state:
    description:
      - C(present) defines it when missing and corrects its definition; C(absent) stops and undefines it.
    type: str
    choices: [present, absent]
    default: present
  active:
    description: Started (V(true)) or stopped (V(false)); unset leaves it as it is.
    type: bool
  autostart:
    description: Started with the libvirt daemon (V(true)) or not (V(false)); unset leaves it as it is.
    type: bool
attributes:
  check_mode:
    support: full
    details: Reports the same steps a real run takes, and changes nothing.
  diff_mode:
    support: full
    details: The stored definition before and after, serialised one way so that only real changes show.
  platform:
    support: full
    platforms: posix
    details: Any host whose libvirt the URI reaches.
'''
