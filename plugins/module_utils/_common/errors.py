# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors raised by phyllome.os module_utils.

module_utils never call fail_json: they raise one of these, and the module's
main() turns it into a failure with fail_from_exception().
"""

from __future__ import annotations


class PhyllomeError(Exception):
    """Base of every error the collection raises on purpose."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class InvalidInput(PhyllomeError):
    """The task's options are wrong; nothing was changed."""


class NotFound(PhyllomeError):
    """Something the task names (a domain, a PCI device, a file) does not exist."""


class HostStateError(PhyllomeError):
    """The host is in a state that makes the request unsafe or impossible."""


class LibvirtFailure(PhyllomeError):
    """A libvirt call failed; the message carries libvirt's own words."""


class CommandFailed(PhyllomeError):
    """An external command exited non-zero (or reported failure on stderr)."""

    def __init__(self, msg, cmd=None, rc=None, stdout='', stderr=''):
        super().__init__(msg, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class MissingLibrary(PhyllomeError):
    """A Python library the module needs is not importable on the target."""

    def __init__(self, library, package, reason=None, exception=None):
        super().__init__('missing library %s' % library, library=library, package=package)
        self.library = library
        self.package = package
        self.reason = reason
        self.exception = exception


def fail_from_exception(module, exc, **result):
    """Fail an AnsibleModule from a PhyllomeError, keeping its details.

    The only place where module_utils errors become fail_json().
    """
    # Imported here so the rest of this file stays free of Ansible imports.
    from ansible.module_utils.basic import missing_required_lib

    if isinstance(exc, MissingLibrary):
        msg = missing_required_lib(exc.library, reason=exc.reason)
        msg += ' On the managed host, install the distribution package %s.' % exc.package
        module.fail_json(msg=msg, exception=exc.exception, **result)
    details = dict(exc.details)
    details.update(result)
    module.fail_json(msg=exc.msg, **details)
