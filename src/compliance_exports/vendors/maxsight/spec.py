"""Maxsight as the registry and the DAG factory see it: its block, its form field, its tasks.

An audit export is synchronous (no job to wait for), and its PDFs hold at most 5,000
events, so its task group is::

    plan -> fetch_csv[] -> land[]
                      └-> plan_pdf_windows -> fetch_pdfs[] -> attach_evidence (after land)

The CSV of a slice is both the Parquet source and the event count that plans the PDF
windows. ``land`` does not wait for the PDFs: a day whose PDFs fail still lands its
Parquet, and the run fails loudly for the PDFs. ``attach_evidence`` then receives every
landed PDF explicitly and records the day's in its manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.vendor import (
    ExportKind,
    ExportVendor,
    PlannedSlice,
    TaskKit,
    export_kwargs,
    land_kwargs,
)
from compliance_exports.runs import iso_ms

if TYPE_CHECKING:
    from airflow.sdk import Param

    from compliance_exports.registry import ExportEntry
    from compliance_exports.runs import ExportSlice
    from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator

log = logging.getLogger(__name__)
#: Airflow's ``[core] max_map_length`` default: no mapped task may have more instances.
MAX_MAPPED_TASKS = 1024


class MaxsightVendor(ExportVendor):
    """Registry block ``maxsight: {file_types: [csv, pdf], filters: {event_type: [...]},
    metadata: {KEY: value}, timezone, locale, window_limit, window_margin}``."""

    name = "maxsight"
    kinds = frozenset({ExportKind.WINDOWED})
    summary = "Maxsight audit events (CSV, and PDFs of at most 5,000 events)"

    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        from compliance_exports.vendors.maxsight.query import (
            ARRAY_PARAMETERS,
            PDF_EVENT_LIMIT,
            AuditExportQuery,
        )

        filters = params.get("filters", {})
        unknown_filters = sorted(set(filters) - set(ARRAY_PARAMETERS))
        if unknown_filters:
            raise ExportValidationError(
                "filters", f"unknown {unknown_filters}; allowed: {', '.join(ARRAY_PARAMETERS)}"
            )
        arrays: dict[str, Any] = {name: tuple(values) for name, values in filters.items()}
        AuditExportQuery(
            metadata=dict(params.get("metadata", {})),
            locale=params.get("locale", "en"),
            timezone=params.get("timezone"),
            **arrays,
        )
        file_types = params.get("file_types", ["csv"])
        if set(file_types) - {"csv", "pdf"} or "csv" not in file_types:
            raise ExportValidationError(
                "file_types",
                f"{file_types!r}: csv is required (it counts the events), pdf optional",
            )
        limit, margin = params.get("window_limit", 5000), params.get("window_margin", 0)
        if not isinstance(limit, int) or not 1 <= limit <= PDF_EVENT_LIMIT:
            raise ExportValidationError("window_limit", f"{limit!r} is not in 1..{PDF_EVENT_LIMIT}")
        if not isinstance(margin, int) or not 0 <= margin < limit:
            raise ExportValidationError("window_margin", f"{margin!r} is not in 0..{limit - 1}")

    def form_params(self, entries: Sequence[ExportEntry]) -> dict[str, Param]:
        from airflow.sdk import Param

        return {
            "audit_pdfs": Param(
                True,
                type="boolean",
                title="Audit PDFs",
                description="Also archive the audit events as PDFs (windows of <= 5,000 events).",
                section="Formats",
            )
        }

    def evidence_kinds(self, entry: ExportEntry, run_params: Mapping[str, Any]) -> tuple[str, ...]:
        """Audit PDFs, when the entry asks for them and the run did not turn them off."""
        wanted = "pdf" in entry.params.get("file_types", ["csv"])
        return ("pdf",) if wanted and run_params.get("audit_pdfs", True) else ()

    def slice_request(
        self, entry: ExportEntry, piece: ExportSlice, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        # Maxsight bounds are inclusive at millisecond precision: [start, end - 1 ms].
        return {
            "range_start": iso_ms(piece.start),
            "range_end": iso_ms(piece.end - dt.timedelta(milliseconds=1)),
        }

    def query_kwargs(self, entry: ExportEntry) -> dict[str, Any]:
        p = entry.params
        return {
            **{k: list(v) for k, v in p.get("filters", {}).items()},
            "metadata": dict(p.get("metadata", {})),
            "timezone": p.get("timezone"),
            "locale": p.get("locale", "en"),
        }

    def operator_class(self) -> type[MaxsightAuditExportToS3Operator]:
        """The CSV (and, subclassed, PDF) fetch; its ``hook_class`` is the vendor's hook."""
        from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator

        return MaxsightAuditExportToS3Operator

    def dry_run(self, entry: ExportEntry, planned: PlannedSlice) -> None:
        self.operator_class()(
            task_id=f"dry_run_{entry.name}",
            dataset=entry.dataset,
            bucket=entry.lake.bucket,
            **self.query_kwargs(entry),
            **planned["request"],
        ).validate()

    def add_tasks(self, entry: ExportEntry, planned: Any, kit: TaskKit) -> None:
        query, fetch = self.query_kwargs(entry), self.operator_class()
        # The CSV is both the Parquet source and the event count that plans the PDFs: it
        # is always asked in UTC and English so its timestamps are machine-readable.
        fetch_csv = fetch.partial(
            task_id="fetch_csv",
            **kit.common,
            **{**query, "timezone": "UTC", "locale": "en"},
            file_type="csv",
            **kit.lake,
        ).expand_kwargs(planned.map(export_kwargs))
        land = kit.land().expand_kwargs(fetch_csv.output.zip(planned).map(land_kwargs))
        if "pdf" not in entry.params.get("file_types", ["csv"]):
            return
        from compliance_exports.vendors.maxsight.pdfs import MaxsightAuditPdfsToS3Operator

        windows = _plan_pdf_windows_task(entry)(fetch_csv.output, planned)
        pdfs = MaxsightAuditPdfsToS3Operator.partial(
            task_id="fetch_pdfs", **kit.common, **query, **kit.lake
        ).expand_kwargs(windows.map(pdf_batch_kwargs))
        land >> kit.attach()(planned, pdfs.output)


def pdf_batch_kwargs(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {"windows": list(batch["windows"]), "day": batch["day"]}


def _plan_pdf_windows_task(entry: ExportEntry) -> Any:
    from airflow.sdk import task

    from compliance_exports.dag_factory import task_defaults

    @task(task_id="plan_pdf_windows", **task_defaults(entry))
    def plan_pdf_windows(
        csvs: Sequence[Mapping[str, Any]], planned: Sequence[Mapping[str, Any]], **context: Any
    ) -> list[dict[str, Any]]:
        """Count each day's events from its CSV (in S3) and plan PDF windows under the limit."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not (context.get("params") or {}).get("audit_pdfs", True):
            raise AirflowSkipException("audit PDFs were switched off for this run")
        return plan_audit_pdfs(entry, list(csvs), list(planned))

    return plan_pdf_windows


def plan_audit_pdfs(
    entry: ExportEntry, csvs: Sequence[Mapping[str, Any]], planned: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Count each slice's events from its CSV in the raw zone and plan its PDF windows.

    Returns batches ``{"day", "windows"}`` for the mapped PDF fetch: one window per batch
    unless there are more windows than Airflow may map, then as few as fit.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from compliance_exports.vendors.maxsight.audit import plan_pdf_windows, read_counting_csv
    from compliance_exports.vendors.maxsight.audit.window import parse_ms

    client = S3Hook(aws_conn_id=entry.lake.aws_conn_id).get_conn()
    limit = entry.params.get("window_limit", 5000)
    margin = entry.params.get("window_margin", 0)
    per_day: list[tuple[str, list[dict[str, Any]]]] = []
    for raw, piece in zip(csvs, planned, strict=True):
        body = client.get_object(Bucket=raw["bucket"], Key=raw["key"])["Body"]
        events = read_counting_csv(body.iter_chunks(1 << 20))
        start, end = (parse_ms(piece["request"][k]) for k in ("range_start", "range_end"))
        windows = plan_pdf_windows(events, start, end, limit=limit, margin=margin)
        log.info("%s dt=%s: %d events -> %d PDF windows (limit %d, margin %d)",
                 entry.name, piece["day"], len(events), len(windows), limit, margin)  # fmt: skip
        per_day.append((piece["day"], [w.to_dict() for w in windows]))
    return batch_windows(per_day, MAX_MAPPED_TASKS)


def batch_windows(
    per_day: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], max_batches: int
) -> list[dict[str, Any]]:
    """Group each day's windows into batches, at most ``max_batches`` in all."""
    total = sum(len(w) for _, w in per_day)
    size = max(1, math.ceil(total / max(1, max_batches - len(per_day))))
    return [
        {"day": day, "windows": list(windows[i : i + size])}
        for day, windows in per_day
        for i in range(0, len(windows), size)
    ]


VENDOR = MaxsightVendor()
