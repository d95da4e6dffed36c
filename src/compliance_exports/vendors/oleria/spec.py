"""Oleria as the registry and the DAG factory see it: its block, its slices, its task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.vendor import ExportKind, JobExportVendor
from compliance_exports.runs import iso_ms

if TYPE_CHECKING:
    from compliance_exports.core.export import ExportOperator
    from compliance_exports.registry import ExportEntry
    from compliance_exports.runs import ExportSlice


class OleriaVendor(JobExportVendor):
    """Registry block ``oleria: {context, filter_by, sort_by, extra_contexts, window_field}``.

    A windowed export adds ``window_field >= start`` and ``< end`` (timestamp filters) to
    its ``filter_by`` for each slice; a snapshot sends ``filter_by`` as registered.
    """

    name = "oleria"
    kinds = frozenset({ExportKind.WINDOWED, ExportKind.SNAPSHOT})
    summary = "Oleria downloads (CSV)"

    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        from compliance_exports.vendors.oleria.filters import validate_download_request

        validate_download_request(
            params.get("context", ""),
            params.get("filter_by", []),
            params.get("sort_by", []),
            extra_contexts=params.get("extra_contexts", ()),
        )
        if kind is ExportKind.WINDOWED and not params.get("window_field"):
            raise ExportValidationError(
                "window_field", "a windowed Oleria export names the timestamp field to filter on"
            )

    def static_kwargs(self, entry: ExportEntry) -> dict[str, Any]:
        p = entry.params
        return {
            "context": p["context"],
            "sort_by": list(p.get("sort_by", [])),
            "extra_contexts": list(p.get("extra_contexts", [])),
        }

    def slice_request(
        self, entry: ExportEntry, piece: ExportSlice, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        filters = list(entry.params.get("filter_by", []))
        if entry.kind is ExportKind.WINDOWED:
            field = entry.params["window_field"]
            filters += [
                {"dataType": "timestamp", "field": field, "filterType": op, "values": [iso_ms(at)]}
                for op, at in (("gte", piece.start), ("lt", piece.end))
            ]
        return {"filter_by": filters}

    def operator_class(self) -> type[ExportOperator]:
        from compliance_exports.vendors.oleria.operators import OleriaExportOperator

        return OleriaExportOperator


VENDOR = OleriaVendor()
