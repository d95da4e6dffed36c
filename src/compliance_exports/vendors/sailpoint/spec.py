"""SailPoint as the registry and the DAG factory see it: its block and its task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compliance_exports.core.vendor import ExportKind, JobExportVendor
from compliance_exports.vendors.sailpoint.reports import validate_report

if TYPE_CHECKING:
    from compliance_exports.core.export import ExportOperator
    from compliance_exports.registry import ExportEntry
    from compliance_exports.runs import ExportSlice


class SailPointVendor(JobExportVendor):
    """Registry block ``sailpoint: {report_type, arguments, file_format: csv|pdf}``."""

    name = "sailpoint"
    kinds = frozenset({ExportKind.SNAPSHOT})
    summary = "SailPoint Identity Security Cloud reports (CSV, PDF, search-export zips)"

    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        validate_report(
            params.get("report_type", ""),
            params.get("arguments", {}),
            params.get("file_format", "csv"),
        )

    def static_kwargs(self, entry: ExportEntry) -> dict[str, Any]:
        p = entry.params
        return {
            "report_type": p["report_type"],
            "arguments": dict(p.get("arguments", {})),
            "file_format": p.get("file_format", "csv"),
        }

    def slice_request(
        self, entry: ExportEntry, piece: ExportSlice, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {}  # a report is a snapshot: nothing of the slice goes into it

    def operator_class(self) -> type[ExportOperator]:
        from compliance_exports.vendors.sailpoint.operators import SailPointReportOperator

        return SailPointReportOperator


VENDOR = SailPointVendor()
