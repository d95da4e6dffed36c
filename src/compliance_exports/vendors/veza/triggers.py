"""The trigger that waits for a Veza access review export in the triggerer."""

from __future__ import annotations

from compliance_exports.core.triggers import ExportStatusTrigger
from compliance_exports.vendors.veza.hook import VezaHook


class VezaAccessReviewExportTrigger(ExportStatusTrigger):
    """Polls the export until FINISHED / FAILED / CANCELLED / EXPIRED."""

    hook_class = VezaHook
