"""Run a SailPoint report, and land its file (CSV, PDF or SEARCH_EXPORT zip) in the raw zone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compliance_exports.core.fetch import ExportJobFetchOperator
from compliance_exports.core.operators import ExportSubmitOperator
from compliance_exports.vendors.sailpoint.hook import SailPointHook
from compliance_exports.vendors.sailpoint.reports import (
    check_file_format,
    report_type,
    validate_report,
)


class SailPointReportOperator(ExportSubmitOperator):
    """``POST .../run`` with ``{reportType, arguments}``, checked before it is sent.

    ``file_format`` is the format the fetch will ask for; it is checked here too, so a
    report that cannot produce it is never started. If SailPoint answers with a task
    of the same report that is already running, that task is the one followed.
    """

    hook_class = SailPointHook
    template_fields = ("report_type", "arguments", "file_format", "conn_id")

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


class SailPointReportToS3Operator(ExportJobFetchOperator):
    """Download a finished report in ``file_format`` (csv | pdf) into the raw zone.

    SEARCH_EXPORT files are zips of CSVs: they are stored whole, as SailPoint sent them.
    """

    hook_class = SailPointHook
    template_fields = (*ExportJobFetchOperator.template_fields, "file_format")

    def __init__(self, *, file_format: str = "csv", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.file_format = file_format

    def validate(self) -> None:
        super().validate()
        request = self.submission.get("request") if isinstance(self.submission, Mapping) else None
        if request:
            report = report_type(request.get("reportType"))
            self.file_format = check_file_format(report, request.get("arguments"), self.file_format)

    def download_options(self) -> dict[str, Any]:
        return {"file_format": self.file_format}
