# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of PCI and USB vendors, devices, subsystems and classes, from the system's pci.ids and usb.ids."""

from __future__ import annotations

import re

# Fedora (hwdata), Debian (pci.ids package), then the upstream default.
PCI_IDS_PATHS = ('/usr/share/hwdata/pci.ids', '/usr/share/misc/pci.ids', '/usr/share/pci.ids')

_BLOCK_END_RE = re.compile(r'\n(?=[^\t#])')


def read_ids(fs, paths=PCI_IDS_PATHS):
    """An IdsDatabase over the first readable file of `paths` on the host (empty when none is)."""
    for path in paths:
        data = fs.read_bytes(path)
        if data:
            return IdsDatabase(data.decode('utf-8', 'replace'), path)
    return IdsDatabase('', None)


class IdsDatabase:
    """Names from a pci.ids or usb.ids file, looking up only the IDs asked for.

    Both files list vendors in ascending ID order, each followed by its
    tab-indented devices and, under those, subsystems; a class section
    (lines `C xx`) follows. The whole file is 1.3 MB and the Intel block
    alone has thousands of lines: building dicts of them costs more than the
    rest of a run. So vendor blocks are found by text search (in ascending
    order, from where the previous one was found), kept as text, and
    searched again for the devices asked for.
    """

    def __init__(self, text, path=None):
        self.path = path
        self._text = '\n' + text if text else ''
        # vendor ID (or 'C xx' for a class) -> (name, block text starting with '\n'), or None
        self._blocks = {}
        # (vendor, device[, subvendor, subdevice]) -> name: hosts repeat IDs (many identical cards).
        self._cache = {}

    def __bool__(self):
        return bool(self._text)

    def preload(self, vendor_ids):
        """Find the blocks of `vendor_ids` (4 hex digits each) in one forward pass over the file."""
        position = 0
        for vendor in sorted(set(v.lower() for v in vendor_ids if v) - set(self._blocks)):
            found = self._text.find('\n%s  ' % vendor, position)
            if found < 0 and position:
                found = self._text.find('\n%s  ' % vendor)
            self._blocks[vendor] = self._block(found) if found >= 0 else None
            if found >= 0:
                position = found

    def _block(self, start):
        """(header name, the indented and comment lines under it) of the header line at `start`."""
        text = self._text
        header_end = text.find('\n', start + 1)
        if header_end < 0:
            header_end = len(text)
        # The block ends at the first line that is neither indented nor a comment.
        following = _BLOCK_END_RE.search(text, header_end)
        end = following.start() if following else len(text)
        name = text[start + 1:header_end].partition('  ')[2].strip() or None
        return name, text[header_end:end]

    def _vendor(self, vendor):
        vendor = (vendor or '').lower()
        if not self._text or not vendor:
            return None
        if vendor not in self._blocks:
            self.preload([vendor])
        return self._blocks[vendor]

    @staticmethod
    def _child(block, prefix):
        """(name, offset of the line end) of the line `prefix  name` in a block, or (None, -1)."""
        found = block.find('\n%s  ' % prefix)
        if found < 0:
            return None, -1
        end = block.find('\n', found + 1)
        if end < 0:
            end = len(block)
        return block[found + 1 + len(prefix):end].strip(), end

    def vendor_name(self, vendor):
        entry = self._vendor(vendor)
        return entry[0] if entry else None

    def device_name(self, vendor, device):
        key = (vendor, device)
        if key not in self._cache:
            self._cache[key] = self._device(vendor, device)[0]
        return self._cache[key]

    def _device(self, vendor, device):
        """(name, end of its line in the vendor block) of a device, or (None, -1)."""
        entry = self._vendor(vendor)
        if not entry or not device:
            return None, -1
        return self._child(entry[1], '\t' + device.lower())

    def subsystem_name(self, vendor, device, subvendor, subdevice):
        key = (vendor, device, subvendor, subdevice)
        if key not in self._cache:
            self._cache[key] = self._subsystem(vendor, device, subvendor, subdevice)
        return self._cache[key]

    def _subsystem(self, vendor, device, subvendor, subdevice):
        name, end = self._device(vendor, device)
        if name is None or not subvendor or not subdevice:
            return None
        # The device's subsystems: the two-tab lines right after its line.
        block = self._vendor(vendor)[1]
        prefix = '\t\t%s %s  ' % (subvendor.lower(), subdevice.lower())
        while end < len(block):
            following = block.find('\n', end + 1)
            if following < 0:
                following = len(block)
            line = block[end + 1:following]
            if line.startswith(prefix):
                return line[len(prefix):].strip()
            if not line.startswith('\t\t') and not line.startswith('#'):
                return None
            end = following
        return None

    def class_name(self, base, sub=None):
        """Name of class `base` (2 hex digits), or of its subclass `sub` when listed."""
        key = ('C', base, sub)
        if key not in self._cache:
            self._cache[key] = self._class(base, sub)
        return self._cache[key]

    def _class(self, base, sub):
        key = 'C ' + base.lower()
        if key not in self._blocks and self._text:
            found = self._text.find('\n%s  ' % key)
            self._blocks[key] = self._block(found) if found >= 0 else None
        entry = self._blocks.get(key)
        if not entry:
            return None
        if sub is not None:
            name = self._child(entry[1], '\t' + sub.lower())[0]
            if name:
                return name
        return entry[0]
