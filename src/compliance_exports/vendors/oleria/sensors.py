"""Wait for an Oleria download to complete, deferred."""

from __future__ import annotations

from compliance_exports.core.sensors import ExportSensor
from compliance_exports.vendors.oleria.triggers import OleriaDownloadTrigger


class OleriaDownloadSensor(ExportSensor):
    """Waits for the download ``job_id`` (a job started elsewhere) to complete."""

    trigger_class = OleriaDownloadTrigger
