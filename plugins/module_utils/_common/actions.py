# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where phyllome.os modules change a host.

Every mutating step (a libvirt call, a file write, a command) is described to
an ActionRecorder, which records it and performs it only outside check mode.
`changed` is "at least one recorded action still stands": an action undone
after a failure (undo()) no longer counts, so a failure after a full
rollback reports `changed: false`, while its actions list shows both. Check
mode and a real run report the same plan, and a test can assert on the plan
without a host. Reads never go through here: they run in check mode too.

The recorder also collects `secrets`: values (graphics passwords) that must
appear in no result, diff, action or message; the end of main()
(module_glue) hands them to Ansible's no_log masking.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import CommandFailed, PhyllomeError

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
        self._standing = set()  # indexes in actions of the changes not undone
        self.secrets = set()

    @property
    def changed(self):
        return bool(self._standing)

    def add_secrets(self, values):
        """Remember values that no output may show (empty ones are ignored)."""
        self.secrets.update(v for v in values if v)

    def mark(self):
        """The index the next recorded action gets (for undo())."""
        return len(self.actions)

    def apply(self, description, func, *args, **kwargs):
        """Record `description`; call func(*args, **kwargs) unless in check mode."""
        self._record(description)
        if self.check_mode:
            return None
        return func(*args, **kwargs)

    def _record(self, description):
        self._standing.add(len(self.actions))
        self.actions.append(description)

    def failed_unchanged(self, index):
        """The action at `index` raised without changing anything (an all-or-nothing call): it is no change."""
        self._standing.discard(index)

    def undo(self, index, description, func=None, *args, **kwargs):
        """Undo the action recorded at `index` (or a list of them) after a failure: record 'undo: description', call func.

        The undone action no longer counts as a change. An undo that fails
        itself is recorded as such, and the action still counts; the error
        is not raised (the original failure is the one to report). Returns
        True when the action is undone.
        """
        if func is not None and not self.check_mode:
            try:
                func(*args, **kwargs)
            except (PhyllomeError, OSError) as exc:
                self.actions.append('undo FAILED: %s: %s' % (description, getattr(exc, 'msg', exc)))
                return False
        self.actions.append('undo: %s' % description)
        self._standing -= set([index] if isinstance(index, int) else index)
        return True

    def undone_since(self, mark, description):
        """Every action from `mark` on was undone by the caller (files put back): record it once."""
        standing = set(i for i in self._standing if i >= mark)
        if not standing:
            return
        self.actions.append('undo: %s' % description)
        self._standing -= standing

    def run(self, argv, description=None, check_rc=True, data=None):
        """Record and run a mutating command; raise CommandFailed on failure.

        Returns (rc, stdout, stderr), or (None, '', '') in check mode.
        """
        self._record(description or ' '.join(argv))
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
