# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._boot import formats
from ansible_collections.phyllome.os.plugins.module_utils._common.errors import HostStateError
from ansible_collections.phyllome.os.tests.fixtures import hosttree
from ansible_collections.phyllome.os.tests.unit.plugins.module_utils._boot.bootloader_host import FIXTURES, grubenv_block

FEDORA40 = hosttree.load(os.path.join(FIXTURES, 'fedora40-grubby.yml'))
FEDORA31 = hosttree.load(os.path.join(FIXTURES, 'fedora31-kernelopts.yml'))
DEBIAN12 = hosttree.load(os.path.join(FIXTURES, 'debian12-grub.yml'))
UBUNTU = hosttree.load(os.path.join(FIXTURES, 'ubuntu2204-cloud-grub.yml'))
SDBOOT = hosttree.load(os.path.join(FIXTURES, 'fedora40-systemd-boot.yml'))
F40_ENTRY = '/boot/loader/entries/8f3e1c2a9b7d4e6f8a0b1c2d3e4f5a6b-6.8.9-300.fc40.x86_64.conf'


def test_bls_entry_fields():
    fields = formats.parse_bls_entry(FEDORA40['files'][F40_ENTRY])
    assert formats.bls_value(fields, 'title') == 'Fedora Linux (6.8.9-300.fc40.x86_64) 40 (Workstation Edition)'
    assert formats.bls_value(fields, 'linux') == '/vmlinuz-6.8.9-300.fc40.x86_64'
    assert fields['initrd'] == ['/initramfs-6.8.9-300.fc40.x86_64.img $tuned_initrd']
    assert formats.bls_options(fields) == ('root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 ro rootflags=subvol=root rhgb '
                                           'quiet $tuned_params')
    assert formats.bls_value(fields, 'grub_arg') == '--unrestricted'
    assert formats.bls_value(fields, 'id') is None


def test_bls_entry_of_systemd_boot_with_comments_and_aligned_values():
    path = '/boot/efi/loader/entries/8f3e1c2a9b7d4e6f8a0b1c2d3e4f5a6b-6.8.9-300.fc40.x86_64.conf'
    fields = formats.parse_bls_entry(SDBOOT['files'][path])
    assert formats.bls_value(fields, 'sort-key') == 'fedora'
    assert formats.bls_options(fields) == 'root=UUID=6b3f0c8e-2f4e-4f6b-9a51-0f3c1d2e4a77 rw rootflags=subvol=root quiet'


def test_bls_options_lines_concatenate():
    fields = formats.parse_bls_entry('title x\noptions root=/dev/sda1 ro\noptions quiet\n')
    assert formats.bls_options(fields) == 'root=/dev/sda1 ro quiet'


def test_grubenv_and_kernelopts_expansion():
    env = formats.parse_grubenv(grubenv_block(FEDORA31['grubenv']['/boot/grub2/grubenv']))
    assert env['saved_entry'] == 'fedora-20200128084425-5.4.13-201.fc31.x86_64'
    assert env['kernelopts'].startswith('root=/dev/mapper/fedora_f31-root ro ')
    assert formats.expand_grub_variables('$kernelopts', env) == env['kernelopts'].strip()
    assert formats.expand_grub_variables('${kernelopts} x', env) == env['kernelopts'].strip() + ' x'
    # Unset variables expand to nothing, as in GRUB; partial words are left alone.
    assert formats.expand_grub_variables('ro $tuned_params quiet', env) == 'ro quiet'
    assert formats.expand_grub_variables('a=$b', env) == 'a=$b'


def test_grubby_info():
    entries = formats.parse_grubby_info(FEDORA40['commands']['grubby --info=ALL'])
    assert [e['index'] for e in entries] == ['0', '1', '2']
    assert entries[0]['kernel'] == '/boot/vmlinuz-6.8.9-300.fc40.x86_64'
    assert entries[0]['args'] == 'ro rootflags=subvol=root rhgb quiet $tuned_params'
    assert entries[2]['id'] == '8f3e1c2a9b7d4e6f8a0b1c2d3e4f5a6b-0-rescue'
    # A quoted value inside args keeps its quotes; only the outer pair goes.
    assert formats.parse_grubby_info('index=0\nargs="ro acpi_osi="Windows 2009""\n')[0]['args'] == 'ro acpi_osi="Windows 2009"'
    assert formats.parse_grubby_info('') == []


def defaults(files):
    return formats.GrubDefaults(list(files))


def test_debian_default_grub_as_shipped():
    grub = defaults([('/etc/default/grub', DEBIAN12['files']['/etc/default/grub'])])
    assert grub.segments() == ['', 'quiet']
    changed = grub.render(['intel_iommu=on iommu=pt', 'quiet'])
    old = DEBIAN12['files']['/etc/default/grub']
    assert changed == {'/etc/default/grub': old.replace('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt"')}


def test_ubuntu_grub_d_overrides_default():
    grub = defaults([('/etc/default/grub', UBUNTU['files']['/etc/default/grub']),
                     ('/etc/default/grub.d/50-cloudimg-settings.cfg',
                      UBUNTU['files']['/etc/default/grub.d/50-cloudimg-settings.cfg'])])
    assert grub.segments() == ['', 'console=tty1 console=ttyS0']
    changed = grub.render(['', 'console=tty1 console=ttyS0 iommu=pt'])
    assert list(changed) == ['/etc/default/grub.d/50-cloudimg-settings.cfg']
    assert 'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1 console=ttyS0 iommu=pt"\n' in changed[
        '/etc/default/grub.d/50-cloudimg-settings.cfg']


@pytest.mark.parametrize('line, value, rendered', [
    ('GRUB_CMDLINE_LINUX="rhgb quiet"', 'rhgb quiet', 'GRUB_CMDLINE_LINUX="rhgb quiet iommu=pt"'),
    ("GRUB_CMDLINE_LINUX='rhgb quiet'", 'rhgb quiet', "GRUB_CMDLINE_LINUX='rhgb quiet iommu=pt'"),
    ('GRUB_CMDLINE_LINUX=quiet', 'quiet', 'GRUB_CMDLINE_LINUX="quiet iommu=pt"'),
    ('GRUB_CMDLINE_LINUX=', '', 'GRUB_CMDLINE_LINUX=iommu=pt'),
    ('export GRUB_CMDLINE_LINUX="quiet"  # set by hand', 'quiet', 'export GRUB_CMDLINE_LINUX="quiet iommu=pt"  # set by hand'),
    ('  GRUB_CMDLINE_LINUX="a \\"b c\\" \\$d"', 'a "b c" $d', '  GRUB_CMDLINE_LINUX="a \\"b c\\" \\$d iommu=pt"'),
])
def test_assignment_styles_round_trip(line, value, rendered):
    text = 'GRUB_TIMEOUT=5\n%s\nGRUB_DISABLE_RECOVERY="true"\n' % line
    grub = defaults([('/etc/default/grub', text)])
    assert grub.segments()[0] == value
    new = (value + ' iommu=pt').strip()
    assert grub.render([new, '']) == {'/etc/default/grub': text.replace(line, rendered)}
    assert grub.render([value, '']) == {}


def test_single_quotes_fall_back_to_double_when_needed():
    grub = defaults([('/etc/default/grub', "GRUB_CMDLINE_LINUX='quiet'\n")])
    assert grub.render(["quiet a='b'", ''])['/etc/default/grub'] == 'GRUB_CMDLINE_LINUX="quiet a=\'b\'"\n'


def test_last_assignment_wins_and_is_the_one_edited():
    text = 'GRUB_CMDLINE_LINUX="a"\nGRUB_CMDLINE_LINUX="b"\n'
    grub = defaults([('/etc/default/grub', text)])
    assert grub.segments() == ['b', '']
    assert grub.render(['c', '']) == {'/etc/default/grub': 'GRUB_CMDLINE_LINUX="a"\nGRUB_CMDLINE_LINUX="c"\n'}


def test_unset_variable_is_added_at_the_end():
    grub = defaults([('/etc/default/grub', 'GRUB_TIMEOUT=5')])
    assert grub.segments() == ['', '']
    assert grub.render(['iommu=pt', '']) == {'/etc/default/grub': 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="iommu=pt"\n'}
    assert grub.render(['', '']) == {}


def test_crlf_line_endings_are_kept():
    grub = defaults([('/etc/default/grub', 'GRUB_TIMEOUT=5\r\nGRUB_CMDLINE_LINUX="quiet"\r\n')])
    assert grub.render(['', ''])['/etc/default/grub'] == 'GRUB_TIMEOUT=5\r\nGRUB_CMDLINE_LINUX=""\r\n'


@pytest.mark.parametrize('line, reason', [
    ('GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX iommu=pt"', 'computed by the shell'),
    ('GRUB_CMDLINE_LINUX="`cat /etc/cmdline`"', 'computed by the shell'),
    ('GRUB_CMDLINE_LINUX=$EXTRA', 'not one literal word'),
    ('GRUB_CMDLINE_LINUX="quiet', 'does not end on this line'),
    ("GRUB_CMDLINE_LINUX='quiet", 'does not end on this line'),
    ('GRUB_CMDLINE_LINUX="a"\'b\'', 'something follows the value'),
    ('GRUB_CMDLINE_LINUX="a"; GRUB_TIMEOUT=1', 'something follows the value'),
])
def test_computed_values_are_refused(line, reason):
    with pytest.raises(HostStateError, match=reason) as info:
        defaults([('/etc/default/grub', 'GRUB_TIMEOUT=5\n%s\n' % line)])
    assert info.value.details == {'path': '/etc/default/grub', 'line': 2}


def test_lookalike_variables_are_not_taken():
    grub = defaults([('/etc/default/grub', 'GRUB_CMDLINE_LINUX_RECOVERY="single"\n#GRUB_CMDLINE_LINUX="x"\n'
                                           'GRUB_CMDLINE_LINUX_DEFAULT_INIT="$x"\n')])
    assert grub.segments() == ['', '']


@pytest.mark.parametrize('value, style, expected', [
    ('a b', '"', '"a b"'),
    ('a"b$c`d\\e', '"', '"a\\"b\\$c\\`d\\\\e"'),
    ('a b', "'", "'a b'"),
    ("a'b", "'", '"a\'b"'),
    ('iommu=pt', '', 'iommu=pt'),
    ('', '', '""'),
    ('a b', '', '"a b"'),
])
def test_shell_quote(value, style, expected):
    assert formats.shell_quote(value, style) == expected
