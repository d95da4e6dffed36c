"""The trigger that waits for an Oleria download in the triggerer."""

from __future__ import annotations

from compliance_exports.core.triggers import ExportStatusTrigger
from compliance_exports.vendors.oleria.hook import OleriaHook


class OleriaDownloadTrigger(ExportStatusTrigger):
    """Polls ``GET /v1/downloads/{id}`` until completed or failed (Oleria cannot cancel)."""

    hook_class = OleriaHook
