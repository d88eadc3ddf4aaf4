# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end of a changing module's main(): the result or the failure, with the recorder's actions.

Every module that changes a host reports `changed` and `actions` from its
ActionRecorder, and a `diff` only in diff mode; these functions do it in one
place.
"""

from __future__ import annotations

from ansible_collections.phyllome.os.plugins.module_utils._common.errors import PhyllomeError, fail_from_exception


def run_and_exit(module, recorder, func, *args, **kwargs):
    """Exit `module` with the result of func(*args, **kwargs), or fail with the PhyllomeError it raises.

    func returns the module's result with a `diff` (a dict or a list of
    them) and without `changed` or `actions`. A failure reports what was
    changed before it and is still changed (nothing after a full rollback);
    in check mode nothing was. The recorder's secrets join Ansible's no_log
    values, so no output (result, diff, message, the invocation) shows them.
    """
    try:
        result = func(*args, **kwargs)
    except PhyllomeError as exc:
        hide_secrets(module, recorder)
        fail_from_exception(module, exc, changed=recorder.changed and not module.check_mode, actions=recorder.actions)
    else:
        exit_with_result(module, recorder, result)


def hide_secrets(module, recorder):
    """Mask the recorder's secrets in everything the module returns (Ansible's no_log mechanism)."""
    module.no_log_values.update(recorder.secrets)


def exit_with_result(module, recorder, result):
    """exit_json with `result`, the recorder's changed and actions, and the result's diff only in diff mode."""
    diff = result.pop('diff')
    if module._diff:
        result['diff'] = diff
    result['actions'] = list(recorder.actions)
    hide_secrets(module, recorder)
    module.exit_json(changed=recorder.changed, **result)
