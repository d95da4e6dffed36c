"""The trigger that waits for an Acme audit log export in the triggerer.

The triggerer imports this class by its dotted path (``tests.fifth_vendor.triggers.
AcmeExportTrigger``, from :meth:`ExportStatusTrigger.serialize`): it must live in a
module the triggerer can import, never in a DAG file.
"""

from __future__ import annotations

from compliance_exports.core.triggers import ExportStatusTrigger
from tests.fifth_vendor.hook import AcmeHook


class AcmeExportTrigger(ExportStatusTrigger):
    """Polls ``GET /api/exports/{id}`` until done or error (Acme cannot cancel)."""

    hook_class = AcmeHook
