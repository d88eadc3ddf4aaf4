# -*- coding: utf-8 -*-
# Copyright: Contributors to the phyllome.os collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the phyllome.os.report role: a host's report as console lines and HTML, the fleet's index."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.phyllome.os.plugins.plugin_utils import _report


def _dict(value, name):
    if not isinstance(value, dict):
        raise AnsibleFilterError('%s expects a host report (a dict), got %s' % (name, type(value).__name__))
    return value


def report_host_page(report):
    return _report.host_page(_dict(report, 'report_host_page'))


def report_index_page(reports, title='Phyllome OS hosts', generated=None, hosts=None, drift=None):
    if not isinstance(reports, (list, tuple)):
        raise AnsibleFilterError('report_index_page expects a list of host reports')
    if drift is not None and not isinstance(drift, dict):
        raise AnsibleFilterError('report_index_page expects drift to be the result of phyllome.os.fleet_drift (a dict)')
    return _report.index_page([_dict(r, 'report_index_page') for r in reports], title=title, generated=generated,
                              hosts=hosts, drift=drift)


def report_summary(report):
    return _report.summary_lines(_dict(report, 'report_summary'))


def report_page_name(host):
    return _report.page_name(host)


class FilterModule:
    def filters(self):
        return {
            'report_host_page': report_host_page,
            'report_index_page': report_index_page,
            'report_summary': report_summary,
            'report_page_name': report_page_name,
        }
