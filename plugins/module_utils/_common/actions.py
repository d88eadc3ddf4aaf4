# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where phyllome.os modules change a host.

Every mutating step (a libvirt call, a file write, a command) is described to
an ActionRecorder, which records it and performs it only outside check mode.
`changed` is "at least one action was recorded", so check mode and a real run
report the same plan, and a test can assert on the plan without a host.
Reads never go through here: they run in check mode too.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed

# Commands run with a stable locale so their output can be parsed.
COMMAND_ENVIRON = {'LANG': 'C', 'LC_ALL': 'C', 'LC_MESSAGES': 'C'}


class ActionRecorder:
    """Records and (outside check mode) performs the actions of one task.

    run_command: a callable with AnsibleModule.run_command's signature, used
    for commands (None when the module runs none).
    """

    def __init__(self, check_mode=False, run_command=None):
        self.check_mode = check_mode
        self._run_command = run_command
        self.actions = []

    @property
    def changed(self):
        return bool(self.actions)

    def apply(self, description, func, *args, **kwargs):
        """Record `description`; call func(*args, **kwargs) unless in check mode."""
        self.actions.append(description)
        if self.check_mode:
            return None
        return func(*args, **kwargs)

    def run(self, argv, description=None, check_rc=True, data=None):
        """Record and run a mutating command; raise CommandFailed on failure.

        Returns (rc, stdout, stderr), or (None, '', '') in check mode.
        """
        self.actions.append(description or ' '.join(argv))
        if self.check_mode:
            return None, '', ''
        return self.query(argv, check_rc=check_rc, data=data)

    def query(self, argv, check_rc=True, data=None):
        """Run a read-only command (not recorded, runs in check mode too)."""
        if self._run_command is None:
            raise RuntimeError('ActionRecorder was built without run_command')
        rc, out, err = self._run_command(argv, data=data, environ_update=COMMAND_ENVIRON)
        if check_rc and rc != 0:
            raise CommandFailed(
                '%s failed (rc=%s): %s' % (argv[0], rc, (err or out).strip()),
                cmd=argv, rc=rc, stdout=out, stderr=err)
        return rc, out, err
