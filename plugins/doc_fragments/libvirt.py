# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The libvirt connection shared by every module that talks to libvirt.
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - libvirt connection URI.
      - C(qemu:///system) is the host's system daemon, C(qemu:///session) the
        calling user's session daemon, C(qemu+ssh://user@host/system) a remote
        host, C(test:///default) libvirt's in-process test driver.
    type: str
    default: qemu:///system
requirements:
  - libvirt-python (the C(python3-libvirt) package on Fedora and Debian) on the managed host
'''
