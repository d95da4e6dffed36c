"""The trigger that waits for a SailPoint report in the triggerer (and cancels it)."""

from __future__ import annotations

from compliance_exports.core.triggers import ExportStatusTrigger
from compliance_exports.vendors.sailpoint.hook import SailPointHook


class SailPointReportTrigger(ExportStatusTrigger):
    """Polls the report result; cancels the report at the deadline and on kill."""

    hook_class = SailPointHook
