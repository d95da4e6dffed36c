"""Wait for a Veza access review export to finish, deferred."""

from __future__ import annotations

from compliance_exports.core.operators import ExportSensor
from compliance_exports.vendors.veza.triggers import VezaAccessReviewExportTrigger


class VezaAccessReviewExportSensor(ExportSensor):
    """Waits for the export ``job_id`` (the submit task's ``job_id``) to finish."""

    trigger_class = VezaAccessReviewExportTrigger
