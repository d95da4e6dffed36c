"""Veza as the registry and the DAG factory see it: its block, its form field, its task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.vendor import ExportKind, JobExportVendor
from compliance_exports.vendors.veza.validation import (
    FORMAT_CSV,
    FORMAT_XLSX,
    validate_access_review_export,
)

if TYPE_CHECKING:
    from airflow.sdk import Param

    from compliance_exports.core.export import ExportOperator
    from compliance_exports.registry import ExportEntry
    from compliance_exports.runs import ExportSlice

FORMATS = {"csv": FORMAT_CSV, "xlsx": FORMAT_XLSX}
STATIC_FIELDS = (
    "certification_id",
    "previous_certification_id",
    "filter",
    "mutable_filter",
    "order_by",
)


class VezaVendor(JobExportVendor):
    """Registry block ``veza: {certification_id, previous_certification_id, format: csv|xlsx,
    title, filter, mutable_filter, order_by}``; the trigger form may override the format."""

    name = "veza"
    kinds = frozenset({ExportKind.SNAPSHOT})
    summary = "Veza access review exports (CSV or XLSX)"

    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        fmt = params.get("format", "csv")
        if fmt not in FORMATS:
            raise ExportValidationError("format", f"{fmt!r} is not one of csv, xlsx")
        validate_access_review_export(
            format=FORMATS[fmt],
            certification_id=params.get("certification_id"),
            previous_certification_id=params.get("previous_certification_id"),
            title=params.get("title"),
            filter=params.get("filter"),
            mutable_filter=params.get("mutable_filter"),
            order_by=params.get("order_by"),
        )

    def form_params(self, entries: Sequence[ExportEntry]) -> dict[str, Param]:
        from airflow.sdk import Param

        return {
            **super().form_params(entries),
            "veza_format": Param(
                "registered",
                type="string",
                enum=["registered", "csv", "xlsx"],
                title="Veza file format",
                description="Override the registry's format for this run.",
                section="Formats",
            ),
        }

    def static_kwargs(self, entry: ExportEntry) -> dict[str, Any]:
        return {k: entry.params[k] for k in STATIC_FIELDS if entry.params.get(k) is not None}

    def slice_request(
        self, entry: ExportEntry, piece: ExportSlice, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        chosen = run_params.get("veza_format", "registered")
        name = entry.params.get("format", "csv") if chosen in (None, "registered") else chosen
        title = entry.params.get("title") if name == "xlsx" else None
        return {"format": FORMATS[name], "title": title}

    def operator_class(self) -> type[ExportOperator]:
        from compliance_exports.vendors.veza.operators import VezaAccessReviewExportOperator

        return VezaAccessReviewExportOperator


VENDOR = VezaVendor()
