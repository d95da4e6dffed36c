"""Wait for a SailPoint report to complete, deferred."""

from __future__ import annotations

from compliance_exports.core.sensors import ExportSensor
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger


class SailPointReportSensor(ExportSensor):
    """Waits for the report task ``job_id``; a report still running at the deadline is
    cancelled (``POST .../{id}/cancel``) before the task fails."""

    trigger_class = SailPointReportTrigger
