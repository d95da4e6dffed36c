"""SailPoint reports: one durable export task (run, wait deferred, download CSV/PDF/zip)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compliance_exports.core.export import ExportOperator
from compliance_exports.vendors.sailpoint.hook import SailPointHook
from compliance_exports.vendors.sailpoint.reports import (
    check_file_format,
    report_type,
    validate_report,
)
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger


class SailPointReportOperator(ExportOperator):
    """``POST .../run`` with ``{reportType, arguments}``, then the file in ``file_format``.

    ``file_format`` (csv | pdf) is checked with the request, so a report that cannot
    produce it is never started. SEARCH_EXPORT files are zips of CSVs, stored whole as
    SailPoint sent them. A report still running at ``wait_timeout`` is cancelled; one that
    ends FAILURE or TERMINATED is run again within ``resubmits``.
    """

    hook_class = SailPointHook
    trigger_class = SailPointReportTrigger
    template_fields = (*ExportOperator.template_fields, "report_type", "arguments", "file_format")

    def __init__(
        self,
        *,
        report_type: str,
        arguments: Mapping[str, Any] | None = None,
        file_format: str = "csv",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.report_type = report_type
        self.arguments = arguments
        self.file_format = file_format

    def build_request(self) -> dict[str, Any]:
        arguments = dict(self.arguments or {})
        validate_report(self.report_type, arguments, self.file_format)
        return {"reportType": self.report_type, "arguments": arguments}

    def download_options(self) -> dict[str, Any]:
        report = report_type(self.report_type)
        return {"file_format": check_file_format(report, self.arguments, self.file_format)}
