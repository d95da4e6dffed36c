"""Acme audit log exports: one durable export task (submit or re-attach, wait deferred,
stream the CSV to the raw zone); the lifecycle is :class:`ExportOperator`'s."""

from __future__ import annotations

from typing import Any

from compliance_exports.core.export import ExportOperator
from tests.fifth_vendor.hook import AcmeHook
from tests.fifth_vendor.triggers import AcmeExportTrigger
from tests.fifth_vendor.validation import check_audit_log, check_include_system, check_window


class AcmeExportOperator(ExportOperator):
    """``POST /api/exports`` of one audit log over ``[since, until)``.

    Every argument is checked before the request is sent; a job that ends ``error`` is
    submitted again within ``resubmits`` and deferred like the first.
    """

    hook_class = AcmeHook
    trigger_class = AcmeExportTrigger
    template_fields = (*ExportOperator.template_fields, "audit_log", "since", "until")

    def __init__(
        self,
        *,
        audit_log: str,
        since: str,
        until: str,
        include_system: bool = False,
        poll_interval: float = 1.0,  # Acme exports take seconds: look again soon
        **kwargs: Any,
    ) -> None:
        super().__init__(poll_interval=poll_interval, **kwargs)
        self.audit_log = audit_log
        self.since = since
        self.until = until
        self.include_system = include_system

    def build_request(self) -> dict[str, Any]:
        check_window(self.since, self.until)
        return {
            "dataset": check_audit_log(self.audit_log),
            "since": self.since,
            "until": self.until,
            "include_system": check_include_system(self.include_system),
        }
