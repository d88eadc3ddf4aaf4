# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.phyllome.os.plugins.module_utils._common import errors


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self):
        self.failed = None

    def fail_json(self, **result):
        self.failed = result
        raise Failed()


@pytest.mark.parametrize('cls', [errors.InvalidInput, errors.NotFound, errors.HostStateError, errors.LibvirtFailure])
def test_every_error_is_a_phyllome_error_with_its_details(cls):
    exc = cls('domain vm1 is not defined', name='vm1')
    assert isinstance(exc, errors.PhyllomeError) and str(exc) == exc.msg == 'domain vm1 is not defined'
    assert exc.details == {'name': 'vm1'}


def test_command_failed_keeps_the_command_and_its_output():
    exc = errors.CommandFailed('update-grub failed (rc=1): disk full', cmd=['update-grub'], rc=1, stderr='disk full')
    assert (exc.cmd, exc.rc, exc.stdout, exc.stderr) == (['update-grub'], 1, '', 'disk full')
    assert exc.details == {'cmd': ['update-grub'], 'rc': 1, 'stdout': '', 'stderr': 'disk full'}


def test_fail_from_exception_passes_details_and_the_result():
    module = FakeModule()
    with pytest.raises(Failed):
        errors.fail_from_exception(module, errors.NotFound('no such domain', name='vm1'), changed=False, actions=[])
    assert module.failed == {'msg': 'no such domain', 'name': 'vm1', 'changed': False, 'actions': []}


def test_the_result_wins_over_details_of_the_same_name():
    module = FakeModule()
    with pytest.raises(Failed):
        errors.fail_from_exception(module, errors.HostStateError('x', changed=True), changed=False)
    assert module.failed['changed'] is False


def test_a_missing_library_says_what_to_install():
    module = FakeModule()
    exc = errors.MissingLibrary('libvirt-python', 'python3-libvirt', reason='to talk to libvirt', exception='Traceback')
    with pytest.raises(Failed):
        errors.fail_from_exception(module, exc, changed=False)
    assert 'libvirt-python' in module.failed['msg'] and 'to talk to libvirt' in module.failed['msg']
    assert module.failed['msg'].endswith('install the distribution package python3-libvirt.')
    assert module.failed['exception'] == 'Traceback' and module.failed['changed'] is False
