"""Acme as the registry and the DAG factory see it: its block, its slices, its task.

Imported when the registry loads (DAG parse time): keep it cheap (no Airflow operator,
no HTTP client; the operator is imported in :meth:`AcmeVendor.operator_class`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.vendor import ExportKind, JobExportVendor
from compliance_exports.runs import iso_ms
from tests.fifth_vendor.validation import check_audit_log, check_include_system

if TYPE_CHECKING:
    from compliance_exports.core.export import ExportOperator
    from compliance_exports.registry import ExportEntry
    from compliance_exports.runs import ExportSlice

FIELDS = frozenset({"audit_log", "include_system"})


class AcmeVendor(JobExportVendor):
    """Registry block ``acme: {audit_log: admin|api|login, include_system: bool}``.

    Windowed only: each slice's ``[start, end)`` becomes the request's ``since``/``until``.
    """

    name = "acme"
    kinds = frozenset({ExportKind.WINDOWED})
    summary = "Acme audit log exports (CSV)"

    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        unknown = sorted(set(params) - FIELDS)
        if unknown:
            raise ExportValidationError(unknown[0], "not an Acme export parameter")
        check_audit_log(params.get("audit_log"))
        check_include_system(params.get("include_system", False))

    def static_kwargs(self, entry: ExportEntry) -> dict[str, Any]:
        return {
            "audit_log": entry.params["audit_log"],
            "include_system": bool(entry.params.get("include_system", False)),
        }

    def slice_request(
        self, entry: ExportEntry, piece: ExportSlice, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {"since": iso_ms(piece.start), "until": iso_ms(piece.end)}

    def operator_class(self) -> type[ExportOperator]:
        from tests.fifth_vendor.operators import AcmeExportOperator

        return AcmeExportOperator


VENDOR = AcmeVendor()
