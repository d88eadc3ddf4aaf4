# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes: libvirt's scaled integers, the sizes a task gives (4G, 512 MiB), the kernel's (hugepagesz=1G).

Binary units throughout where the spelling allows (K, M, G are 1024-based,
as libvirt and the kernel read them); libvirt's KB, MB, GB are decimal.
"""

from __future__ import annotations

import re

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput

# libvirt's scaled-integer units (docs: formatdomain.html#memory-allocation).
_UNIT_FACTORS = {
    'b': 1, 'bytes': 1,
    'k': 1024, 'kib': 1024, 'kb': 1000,
    'm': 1024 ** 2, 'mib': 1024 ** 2, 'mb': 1000 ** 2,
    'g': 1024 ** 3, 'gib': 1024 ** 3, 'gb': 1000 ** 3,
    't': 1024 ** 4, 'tib': 1024 ** 4, 'tb': 1000 ** 4,
    'p': 1024 ** 5, 'pib': 1024 ** 5, 'pb': 1000 ** 5,
    'e': 1024 ** 6, 'eib': 1024 ** 6, 'eb': 1000 ** 6,
}

MiB = 1024 ** 2

_SIZE_RE = re.compile(r'^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$')
# The kernel's memparse(): a number with an optional one-letter binary suffix.
_KERNEL_SIZE_RE = re.compile(r'^([0-9]+)([kmgtpe]?)$')


def unit_factor(unit):
    """Bytes per `unit` in libvirt's spelling (KiB, MiB, G, ...); None when unknown."""
    if unit is None:
        return None
    return _UNIT_FACTORS.get(unit.strip().lower())


def quantity_bytes(value, unit=None, default_unit='KiB'):
    """A libvirt scaled integer (`value` in `unit`) in bytes, or None when not numeric."""
    factor = unit_factor(unit or default_unit)
    if factor is None:
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number * factor


def parse_size(value, default_unit, what):
    """An option's size (int in `default_unit`, or text such as '4G', '512 MiB') in bytes.

    Binary units throughout, as libvirt reads K/M/G: 1G is 1024 MiB.
    """
    if isinstance(value, bool):
        raise InvalidInput('%s must be a size such as 4096 or 4G, not %r' % (what, value))
    if isinstance(value, int):
        number, unit = value, default_unit
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise InvalidInput('%s must be a size such as 4096 or 4G, not %r' % (what, value))
        number = float(match.group(1))
        unit = match.group(2) or default_unit
    factor = unit_factor(unit)
    if factor is None:
        raise InvalidInput('%s has an unknown unit %r (use K, M, G, T, or KiB, MiB, GiB, TiB)' % (what, unit))
    size = int(number * factor)
    if size <= 0:
        raise InvalidInput('%s must be larger than zero' % what)
    return size


def format_bytes(size):
    """A byte count in the largest binary unit that divides it exactly (for messages)."""
    for unit in ('TiB', 'GiB', 'MiB', 'KiB'):
        factor = _UNIT_FACTORS[unit.lower()]
        if size and size % factor == 0:
            return '%d %s' % (size // factor, unit)
    return '%d bytes' % size


def kernel_size_kb(text):
    """A size as the kernel's memparse() reads it (2M, 1G, 2048k; a bare number is bytes) in KiB, or None."""
    match = _KERNEL_SIZE_RE.match((text or '').strip().lower())
    if not match:
        return None
    return int(match.group(1)) * unit_factor(match.group(2) or 'b') // 1024
