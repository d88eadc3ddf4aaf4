# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._boot import kernel_args as ka
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import InvalidInput

# A Fedora 40 /proc/cmdline as GRUB passes it (BOOT_IMAGE first, quoted value).
FEDORA_RUNNING = ('BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.8.9-300.fc40.x86_64 root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro '
                  'rootflags=subvol=root rhgb quiet')


@pytest.mark.parametrize('item, message', [
    ('a=b\nc', 'newline'),
    ('a=\x1b', 'control character'),
    ('', 'empty'),
    ('   ', 'empty'),
    ('a="b', 'unbalanced'),
    ('a=b c', 'is 2 kernel arguments'),
    ('intel_iommu=on iommu=pt', 'is 2 kernel arguments'),
    ('=value', 'no valid argument name'),
    ('--', 'separates init arguments'),
    ('BOOT_IMAGE=/vmlinuz', 'boot loader itself'),
    ('ostree=/ostree/boot.1/x', 'boot loader itself'),
])
def test_bad_items_are_refused(item, message):
    with pytest.raises(InvalidInput, match=message):
        ka.KernelArgsRequest(present=[item])


def test_non_string_item_is_refused():
    with pytest.raises(InvalidInput, match='not a string'):
        ka.KernelArgsRequest(absent=[1])


@pytest.mark.parametrize('present, absent, message', [
    (['iommu=pt'], ['iommu'], 'both present'),
    (['iommu=pt'], ['iommu=pt'], 'both present and absent'),
    (['iommu=pt', 'iommu=soft'], [], 'takes a single value'),
    (['quiet', 'quiet=1'], [], 'takes a single value'),
])
def test_contradictions_are_refused(present, absent, message):
    with pytest.raises(InvalidInput, match=message):
        ka.KernelArgsRequest(present=present, absent=absent)


def test_request_normalizes_and_deduplicates():
    request = ka.KernelArgsRequest(present=['console=ttyS0', 'console=tty0', ' console=ttyS0 '],
                                   absent=['iommu=soft', 'vfio-pci.ids'], repeatable=['hugepagesz'])
    assert [a.raw for a in request.present] == ['console=ttyS0', 'console=tty0']
    assert request.managed_keys() == ['console', 'iommu', 'vfio_pci.ids']
    assert request.is_repeatable('hugepagesz') and request.is_repeatable('console')
    assert not request.is_repeatable('iommu')


@pytest.mark.parametrize('bad', ['', 'a=b', 'a b', 5])
def test_repeatable_must_be_names(bad):
    with pytest.raises(InvalidInput, match='repeatable'):
        ka.KernelArgsRequest(repeatable=[bad])


# (before, present, absent, after): one segment, in place.
EDITS = [
    # Adding keeps everything else byte for byte, spacing included.
    ('ro  rhgb quiet', ['intel_iommu=on', 'iommu=pt'], [], 'ro  rhgb quiet intel_iommu=on iommu=pt'),
    ('', ['iommu=pt'], [], 'iommu=pt'),
    ('   ', ['iommu=pt'], [], 'iommu=pt   '),
    # Already there (other spelling of the name, quoted value): nothing to do.
    ('ro vfio_pci.ids=10de:1b80 quiet', ['vfio-pci.ids=10de:1b80'], [], 'ro vfio_pci.ids=10de:1b80 quiet'),
    ('a="x y"', ['a="x y"'], [], 'a="x y"'),
    # A single-valued argument gets its value replaced in place.
    ('ro iommu=soft quiet', ['iommu=pt'], [], 'ro iommu=pt quiet'),
    # ... and its duplicates go, keeping the occurrence that already matches.
    ('iommu=soft ro iommu=pt quiet iommu=off', ['iommu=pt'], [], 'ro iommu=pt quiet'),
    # A bare flag asked for replaces a valued form.
    ('splash=silent quiet', ['splash'], [], 'splash quiet'),
    # Repeatable: a missing value is added, the others stay.
    ('console=tty0 quiet', ['console=ttyS0,115200n8'], [], 'console=tty0 quiet console=ttyS0,115200n8'),
    ('console=tty0 console=ttyS0', ['console=ttyS0'], [], 'console=tty0 console=ttyS0'),
    ('rd.driver.pre=nvidia', ['rd.driver.pre=vfio-pci'], [], 'rd.driver.pre=nvidia rd.driver.pre=vfio-pci'),
    # absent by name removes every value; name=value only that value.
    ('console=tty0 ro console=ttyS0 console', [], ['console'], 'ro'),
    ('console=tty0 ro console=ttyS0', [], ['console=ttyS0'], 'console=tty0 ro'),
    ('a="x y" b', [], ['a="x y"'], 'b'),
    ('ro quiet', [], ['rhgb'], 'ro quiet'),
    # Removing the first argument keeps the line's own leading/trailing space.
    (' quiet ro ', [], ['quiet'], ' ro '),
    ('quiet', [], ['quiet'], ''),
    # Present and absent together.
    ('ro rhgb quiet iommu=soft', ['iommu=pt', 'intel_iommu=on'], ['rhgb', 'quiet'], 'ro iommu=pt intel_iommu=on'),
    # `--`: arguments after it belong to init and are never touched; new ones go before it.
    ('ro quiet -- quiet single', ['iommu=pt'], ['quiet'], 'ro iommu=pt -- quiet single'),
    ('-- single', ['iommu=pt'], [], 'iommu=pt -- single'),
    # A quoted value given by the admin is written as given.
    ('ro', ['acpi_osi="Windows 2009"'], [], 'ro acpi_osi="Windows 2009"'),
]


@pytest.mark.parametrize('before, present, absent, after', EDITS)
def test_edit_one_segment(before, present, absent, after):
    edit = ka.edit_cmdline([before], ka.KernelArgsRequest(present, absent))
    assert edit.after == [after]
    assert edit.changed == (before != after)


@pytest.mark.parametrize('before, present, absent, after', EDITS)
def test_edit_is_idempotent(before, present, absent, after):
    request = ka.KernelArgsRequest(present, absent)
    again = ka.edit_cmdline([after], request)
    assert not again.changed


def test_edit_reports_added_and_removed():
    edit = ka.edit_cmdline(['ro iommu=soft console=tty0 quiet'],
                           ka.KernelArgsRequest(['iommu=pt', 'console=ttyS0'], ['quiet']))
    assert edit.added == ['iommu=pt', 'console=ttyS0']
    assert sorted(edit.removed) == ['iommu=soft', 'quiet']


def test_edit_not_in_place_appends_the_new_value():
    edit = ka.edit_cmdline(['ro iommu=soft quiet'], ka.KernelArgsRequest(['iommu=pt']), in_place=False)
    assert edit.after == ['ro quiet iommu=pt']
    assert edit.removed == ['iommu=soft'] and edit.added == ['iommu=pt']


def test_edit_two_segments_as_one_line():
    # GRUB_CMDLINE_LINUX, GRUB_CMDLINE_LINUX_DEFAULT: the kernel sees both.
    request = ka.KernelArgsRequest(['iommu=pt', 'console=ttyS0'], ['quiet'])
    edit = ka.edit_cmdline(['rd.lvm.lv=vg/root iommu=soft', 'quiet splash iommu=nopt'], request)
    assert edit.after == ['rd.lvm.lv=vg/root iommu=pt console=ttyS0', 'splash']
    # New arguments go to the chosen segment; existing ones change where they are.
    edit = ka.edit_cmdline(['', 'quiet iommu=soft'], ka.KernelArgsRequest(['iommu=pt', 'intel_iommu=on']))
    assert edit.after == ['intel_iommu=on', 'quiet iommu=pt']


def test_edit_end_marker_in_an_earlier_segment():
    edit = ka.edit_cmdline(['ro -- single', 'quiet'], ka.KernelArgsRequest(['iommu=pt'], ['quiet']), append_to=1)
    # `quiet` in the second segment is an init argument here: untouched.
    assert edit.after == ['ro iommu=pt -- single', 'quiet']


def test_touched_keys():
    assert ka.touched_keys('a=1 b c=3', 'a=1 c=4 d') == ['b', 'c', 'd']
    assert ka.touched_keys('x', 'x') == []


@pytest.mark.parametrize('configured, running, present, absent, pending', [
    # What is configured is running: no reboot.
    ('root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro rootflags=subvol=root rhgb quiet', FEDORA_RUNNING,
     ['rhgb'], ['iommu'], []),
    # Configured, not yet running: reboot pending (a second run before the reboot says so too).
    ('ro rhgb quiet intel_iommu=on iommu=pt', FEDORA_RUNNING, ['intel_iommu=on', 'iommu=pt'], [],
     ['intel_iommu', 'iommu']),
    # Removed from the configuration but still running.
    ('ro rhgb', FEDORA_RUNNING, [], ['quiet'], ['quiet']),
    # Quoting differs (GRUB quotes the whole argument), the value is the same.
    ('acpi_osi="Windows 2009"', 'BOOT_IMAGE=/vmlinuz "acpi_osi=Windows 2009"', ['acpi_osi="Windows 2009"'], [], []),
    # Other spelling of the name, same argument.
    ('vfio-pci.ids=10de:1b80', 'ro vfio_pci.ids=10de:1b80', ['vfio-pci.ids=10de:1b80'], [], []),
    # Order of a repeatable argument matters (the last console= is /dev/console).
    ('console=ttyS0 console=tty0', 'console=tty0 console=ttyS0', ['console=tty0'], [], ['console']),
    # Unmanaged differences do not count.
    ('ro iommu=pt', 'ro iommu=pt quiet splash', ['iommu=pt'], [], []),
])
def test_pending_arguments(configured, running, present, absent, pending):
    assert ka.pending_arguments(configured, running, ka.KernelArgsRequest(present, absent)) == pending


def test_check_carriable():
    request = ka.KernelArgsRequest(['a=$x'])
    with pytest.raises(InvalidInput, match=r"grub backend cannot carry '\$' \(expanded\)"):
        request.check_carriable('grub', forbidden='$', reason='expanded')
    request = ka.KernelArgsRequest(['a="b c"'])
    request.check_carriable('kernel-install', forbidden='$')
    with pytest.raises(InvalidInput, match='quoted values or values with spaces'):
        request.check_carriable('rpm-ostree', spaces=False)
