"""Wait for a Veza access review export to finish, deferred."""

from __future__ import annotations

from compliance_exports.core.sensors import ExportSensor
from compliance_exports.vendors.veza.triggers import VezaAccessReviewExportTrigger


class VezaAccessReviewExportSensor(ExportSensor):
    """Waits for the export ``job_id`` (a job started elsewhere) to finish."""

    trigger_class = VezaAccessReviewExportTrigger
