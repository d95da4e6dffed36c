"""DAGs from the export registry: one DAG per vendor (per registry ``dag``).

For each registry entry, a task group::

    plan ──> submit[] ──> wait[] (deferred) ──> fetch[] ──> land[]       (Oleria, Veza, SailPoint)
    plan ──> fetch_csv[] ──> land[]                                      (Maxsight, CSV)
                 └──> plan_pdf_windows ──> fetch_pdfs[] ──┘              (Maxsight, PDFs)

``plan`` resolves the run (data interval or the trigger form's range, the export
subset, dry run) into slices, one per partition day; the other tasks are mapped over
them. Why one DAG per vendor: the vendor's pool, connection and rate limits are shared
by its exports, the trigger form offers a multi-select of that vendor's exports, and a
vendor outage fails one DAG instead of all of them (README, "DAG design").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import DAG, Asset, Param, TaskGroup, task
from airflow.sdk.bases.operator import BaseOperator
from airflow.timetables.interval import CronDataIntervalTimetable

from compliance_exports.registry import ExportEntry, ExportKind, Registry, Vendor, load_registry

log = logging.getLogger(__name__)

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = "compliance-exports"
DOC = """Exports of {vendor} from the registry (`include/registry/exports.yaml`):

{entries}

Trigger form: pick a subset of exports, optionally a date range (one partition per day
for windowed exports; snapshot exports take the vendor's current state only), a format
override, or a dry run that validates and plans without contacting the vendor.
"""


# --- the trigger form --------------------------------------------------------------------


def _optional_date(title: str, description: str) -> Param:
    """An optional date picker in the form's "Date range override" section."""
    return Param(
        None,
        type=["null", "string"],
        format="date",
        title=title,
        description=description,
        section="Date range override",
    )


def trigger_form(entries: Sequence[ExportEntry]) -> dict[str, Param]:
    names = [e.name for e in entries]
    params: dict[str, Param] = {
        "exports": Param(
            names,
            type="array",
            items={"type": "string", "enum": names},
            examples=names,
            title="Exports",
            description="Which of this DAG's exports to run (all by default).",
            section="What to export",
        ),
        "range_start": _optional_date(
            "Range start",
            "First day to export (windowed exports); empty = the run's data interval.",
        ),
        "range_end": _optional_date(
            "Range end", "Last day to export, inclusive. Set both or neither."
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Validate and plan (logged), submit nothing, contact no vendor.",
            section="What to export",
        ),
    }
    vendors = {e.vendor for e in entries}
    if Vendor.VEZA in vendors:
        params["veza_format"] = Param(
            "registered",
            type="string",
            enum=["registered", "csv", "xlsx"],
            title="Veza file format",
            description="Override the registry's format for this run.",
            section="Formats",
        )
    if Vendor.MAXSIGHT in vendors:
        params["audit_pdfs"] = Param(
            True,
            type="boolean",
            title="Audit PDFs",
            description="Also archive the audit events as PDFs (windows of <= 5,000 events).",
            section="Formats",
        )
    return params


# --- plan: params + data interval -> slices -------------------------------------------


def plan_items(
    entry: ExportEntry, known: Sequence[str], context: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The slices of this run for ``entry``, each with its vendor kwargs.

    ``known`` are the export names of the DAG (what the trigger form may select).
    """
    from compliance_exports.runs import RunRequest, SlicePolicy, plan_slices

    params = context.get("params") or {}
    request = RunRequest.from_params(params, known=known)
    interval = None
    if context.get("data_interval_start") and context.get("data_interval_end"):
        interval = (context["data_interval_start"], context["data_interval_end"])
    policy = SlicePolicy(
        name=entry.name,
        snapshot=entry.kind is ExportKind.SNAPSHOT,
        timezone=entry.timezone,
        snapshot_grace=entry.snapshot_grace,
    )
    now = dt.datetime.now(dt.UTC)
    slices = plan_slices(policy, request, interval, now)
    spec = VENDOR_SPECS[entry.vendor]
    return [
        {
            "day": s.day.isoformat(),
            "slice": s.to_dict(),
            "submit": spec.submit_kwargs(entry, s, params),
        }
        for s in slices
    ]


@dataclass(frozen=True)
class VendorSpec:
    """How a vendor's operators are instantiated from a registry entry."""

    submit: Callable[[], type[BaseOperator]] | None
    sensor: Callable[[], type[BaseOperator]] | None
    fetch: Callable[[], type[BaseOperator]]
    static_kwargs: Callable[[ExportEntry], dict[str, Any]]
    submit_kwargs: Callable[[ExportEntry, Any, Mapping[str, Any]], dict[str, Any]]
    fetch_kwargs: Callable[[ExportEntry], dict[str, Any]] = lambda entry: {}


def _oleria_static(entry: ExportEntry) -> dict[str, Any]:
    p = entry.params
    return {
        "context": p["context"],
        "sort_by": list(p.get("sort_by", [])),
        "extra_contexts": list(p.get("extra_contexts", [])),
    }


def _oleria_submit(entry: ExportEntry, s: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    filters = list(entry.params.get("filter_by", []))
    if entry.kind is ExportKind.WINDOWED:
        field = entry.params["window_field"]
        filters += [
            {
                "dataType": "timestamp",
                "field": field,
                "filterType": "gte",
                "values": [_iso(s.start)],
            },
            {"dataType": "timestamp", "field": field, "filterType": "lt", "values": [_iso(s.end)]},
        ]
    return {"filter_by": filters}


def _veza_static(entry: ExportEntry) -> dict[str, Any]:
    p = entry.params
    keys = ("certification_id", "previous_certification_id", "filter", "mutable_filter", "order_by")
    return {k: p[k] for k in keys if p.get(k) is not None}


def _veza_submit(entry: ExportEntry, s: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    from compliance_exports.vendors.veza.validation import FORMAT_CSV, FORMAT_XLSX

    chosen = params.get("veza_format", "registered")
    name = entry.params.get("format", "csv") if chosen in (None, "registered") else chosen
    title = entry.params.get("title") if name == "xlsx" else None
    return {"format": FORMAT_XLSX if name == "xlsx" else FORMAT_CSV, "title": title}


def _sailpoint_static(entry: ExportEntry) -> dict[str, Any]:
    p = entry.params
    return {
        "report_type": p["report_type"],
        "arguments": dict(p.get("arguments", {})),
        "file_format": p.get("file_format", "csv"),
    }


def _maxsight_static(entry: ExportEntry) -> dict[str, Any]:
    p = entry.params
    return {
        **{k: list(v) for k, v in p.get("filters", {}).items()},
        "metadata": dict(p.get("metadata", {})),
        "timezone": p.get("timezone"),
        "locale": p.get("locale", "en"),
    }


def _maxsight_submit(entry: ExportEntry, s: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    # Maxsight bounds are inclusive at millisecond precision: [start, end - 1 ms].
    return {"range_start": _iso(s.start), "range_end": _iso(s.end - dt.timedelta(milliseconds=1))}


def _no_kwargs(entry: ExportEntry, s: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _oleria_ops() -> tuple[type[BaseOperator], type[BaseOperator], type[BaseOperator]]:
    from compliance_exports.vendors.oleria.operators import (
        OleriaDownloadOperator,
        OleriaDownloadToS3Operator,
    )
    from compliance_exports.vendors.oleria.sensors import OleriaDownloadSensor

    return OleriaDownloadOperator, OleriaDownloadSensor, OleriaDownloadToS3Operator


def _veza_ops() -> tuple[type[BaseOperator], type[BaseOperator], type[BaseOperator]]:
    from compliance_exports.vendors.veza.operators import (
        VezaAccessReviewExportOperator,
        VezaAccessReviewToS3Operator,
    )
    from compliance_exports.vendors.veza.sensors import VezaAccessReviewExportSensor

    return (
        VezaAccessReviewExportOperator,
        VezaAccessReviewExportSensor,
        VezaAccessReviewToS3Operator,
    )


def _sailpoint_ops() -> tuple[type[BaseOperator], type[BaseOperator], type[BaseOperator]]:
    from compliance_exports.vendors.sailpoint.operators import (
        SailPointReportOperator,
        SailPointReportToS3Operator,
    )
    from compliance_exports.vendors.sailpoint.sensors import SailPointReportSensor

    return SailPointReportOperator, SailPointReportSensor, SailPointReportToS3Operator


def _maxsight_fetch() -> type[BaseOperator]:
    from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator

    return MaxsightAuditExportToS3Operator


VENDOR_SPECS: Mapping[Vendor, VendorSpec] = {
    Vendor.OLERIA: VendorSpec(
        lambda: _oleria_ops()[0], lambda: _oleria_ops()[1], lambda: _oleria_ops()[2],
        _oleria_static, _oleria_submit,
    ),
    Vendor.VEZA: VendorSpec(
        lambda: _veza_ops()[0], lambda: _veza_ops()[1], lambda: _veza_ops()[2],
        _veza_static, _veza_submit,
    ),
    Vendor.SAILPOINT: VendorSpec(
        lambda: _sailpoint_ops()[0], lambda: _sailpoint_ops()[1], lambda: _sailpoint_ops()[2],
        _sailpoint_static, _no_kwargs,
        lambda entry: {"file_format": entry.params.get("file_format", "csv")},
    ),
    Vendor.MAXSIGHT: VendorSpec(None, None, _maxsight_fetch, _maxsight_static, _maxsight_submit),
}  # fmt: skip


# --- XCom plumbing between mapped tasks (module-level so they pickle and read well) -----


def _submit_kwargs(item: Mapping[str, Any]) -> dict[str, Any]:
    return dict(item["submit"])


def _job_id(submitted: Mapping[str, Any]) -> str:
    return str(submitted["job_id"])


def _fetch_kwargs(pair: tuple[Mapping[str, Any], Mapping[str, Any]]) -> dict[str, Any]:
    submitted, item = pair
    return {"submission": dict(submitted), "day": item["day"]}


def _audit_fetch_kwargs(item: Mapping[str, Any]) -> dict[str, Any]:
    return {**item["submit"], "day": item["day"]}


def _land_kwargs(pair: tuple[Mapping[str, Any], Mapping[str, Any]]) -> dict[str, Any]:
    raw, item = pair
    return {"raw": dict(raw), "item": dict(item), "request": dict(item["submit"])}


def _land_job_kwargs(
    triple: tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]],
) -> dict[str, Any]:
    raw, item, submitted = triple
    return {"raw": dict(raw), "item": dict(item), "request": dict(submitted.get("request") or {})}


# --- tasks -------------------------------------------------------------------------------


def task_defaults(entry: ExportEntry) -> dict[str, Any]:
    """Retries with exponential back-off and a timeout on every task of the export."""
    return {
        "retries": entry.retries,
        "retry_delay": entry.retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(minutes=30),
        "execution_timeout": entry.execution_timeout,
    }


def _plan_task(entry: ExportEntry, known: Sequence[str]) -> Any:
    @task(task_id="plan", **{**task_defaults(entry), "retries": 0})
    def plan(**context: Any) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from compliance_exports.core.errors import ExportValidationError
        from compliance_exports.runs import NothingToExport

        try:
            items = plan_items(entry, known, context)
        except ExportValidationError as exc:
            raise AirflowFailException(f"invalid trigger parameters: {exc}") from None
        except NothingToExport as exc:
            log.info("%s", exc)
            raise AirflowSkipException(str(exc)) from None
        for item in items:
            log.info("%s: partition dt=%s, request %s", entry.name, item["day"], item["submit"])
        if (context.get("params") or {}).get("dry_run"):
            _validate_dry_run(entry, items)
            raise AirflowSkipException(f"dry run: {len(items)} slice(s) planned and validated")
        return items

    return plan()


def _validate_dry_run(entry: ExportEntry, items: Sequence[Mapping[str, Any]]) -> None:
    """Build (and so validate) every operator the run would use, without executing it."""
    spec = VENDOR_SPECS[entry.vendor]
    for item in items:
        if spec.submit is not None:
            op = spec.submit()(task_id=f"dry_run_{entry.name}", **spec.static_kwargs(entry),
                               **item["submit"])  # fmt: skip
            op.build_request()  # type: ignore[attr-defined]
        log.info("dry run: %s dt=%s would be exported", entry.name, item["day"])


def _land_task(entry: ExportEntry, trigger_rule: str = "all_success") -> Any:
    asset = Asset(entry.asset_uri, extra={"vendor": entry.vendor.value, "dataset": entry.dataset})

    @task(task_id="land", outlets=[asset], trigger_rule=trigger_rule, **task_defaults(entry))
    def land(
        raw: dict[str, Any], item: dict[str, Any], request: dict[str, Any], **context: Any
    ) -> dict[str, Any]:
        from compliance_exports.pipeline import land_export, landed_pdfs

        pdfs = landed_pdfs(context["ti"], f"{entry.name}.fetch_pdfs", item["day"])
        result = dict(land_export(entry, raw, item, request, evidence=pdfs))
        context["outlet_events"][asset].extra = {
            "rows": result.get("rows"),
            "manifest": result.get("manifest_uri"),
            "day": item["day"],
        }
        return result

    return land


def _job_group(entry: ExportEntry, items: Any) -> None:
    spec = VENDOR_SPECS[entry.vendor]
    assert spec.submit is not None
    assert spec.sensor is not None
    common = {"conn_id": entry.conn_id, "pool": entry.pool, **task_defaults(entry)}
    submit = (
        spec.submit()
        .partial(task_id="submit", **common, **spec.static_kwargs(entry))
        .expand_kwargs(items.map(_submit_kwargs))
    )
    wait = (
        spec.sensor()
        .partial(
            task_id="wait",
            **common,
            timeout=entry.wait_timeout.total_seconds(),
            poll_interval=15.0,
            max_poll_interval=120.0,
        )
        .expand(job_id=submit.output.map(_job_id))
    )
    fetch = (
        spec.fetch()
        .partial(task_id="fetch", **common, **spec.fetch_kwargs(entry), **_lake_kwargs(entry))
        .expand_kwargs(submit.output.zip(items).map(_fetch_kwargs))
    )
    wait >> fetch
    _land_task(entry).expand_kwargs(fetch.output.zip(items, submit.output).map(_land_job_kwargs))


def _audit_group(entry: ExportEntry, items: Any) -> None:
    spec = VENDOR_SPECS[entry.vendor]
    query = spec.static_kwargs(entry)
    common = {"conn_id": entry.conn_id, "pool": entry.pool, **task_defaults(entry)}
    # The CSV is both the Parquet source and the event count that plans the PDFs: it is
    # always asked in UTC and English so its timestamps are machine-readable ISO-8601.
    fetch_csv = (
        spec.fetch()
        .partial(
            task_id="fetch_csv",
            **common,
            **{**query, "timezone": "UTC", "locale": "en"},
            file_type="csv",
            **_lake_kwargs(entry),
        )
        .expand_kwargs(items.map(_audit_fetch_kwargs))
    )
    land = _land_task(entry, trigger_rule="none_failed").expand_kwargs(
        fetch_csv.output.zip(items).map(_land_kwargs)
    )
    if "pdf" in entry.params.get("file_types", ["csv"]):
        from compliance_exports.vendors.maxsight.pdfs import MaxsightAuditPdfsToS3Operator

        windows = _plan_pdf_windows_task(entry)(fetch_csv.output, items)
        pdfs = MaxsightAuditPdfsToS3Operator.partial(
            task_id="fetch_pdfs", **common, **query, **_lake_kwargs(entry)
        ).expand_kwargs(windows.map(_pdf_batch_kwargs))
        pdfs >> land


def _pdf_batch_kwargs(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {"windows": list(batch["windows"]), "day": batch["day"]}


def _plan_pdf_windows_task(entry: ExportEntry) -> Any:
    @task(task_id="plan_pdf_windows", **task_defaults(entry))
    def plan_pdf_windows(
        csvs: Sequence[Mapping[str, Any]], items: Sequence[Mapping[str, Any]], **context: Any
    ) -> list[dict[str, Any]]:
        """Count each day's events from its CSV (in S3) and plan PDF windows under the limit."""
        from airflow.sdk.exceptions import AirflowSkipException

        from compliance_exports.pipeline import plan_audit_pdfs

        if not (context.get("params") or {}).get("audit_pdfs", True):
            raise AirflowSkipException("audit PDFs were switched off for this run")
        return plan_audit_pdfs(entry, list(csvs), list(items))

    return plan_pdf_windows


def _lake_kwargs(entry: ExportEntry) -> dict[str, Any]:
    return {
        "dataset": entry.dataset,
        "bucket": entry.lake.bucket,
        "prefix": entry.lake.prefix,
        "aws_conn_id": entry.lake.aws_conn_id,
        "server_side_encryption": entry.lake.sse,
        "kms_key_id": entry.lake.kms_key_id,
    }


# --- DAGs --------------------------------------------------------------------------------


def build_dag(dag_id: str, entries: Sequence[ExportEntry]) -> DAG:
    first = entries[0]
    vendors = sorted({e.vendor.value for e in entries})
    listing = "\n".join(f"- `{e.name}` ({e.kind.value}): {e.description}" for e in entries)
    with DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable(first.schedule, timezone=first.timezone),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=2,
        tags=["compliance-exports", "nightly", *vendors, *{t for e in entries for t in e.tags}],
        params=trigger_form(entries),
        doc_md=DOC.format(vendor=", ".join(vendors), entries=listing),
        default_args={"owner": OWNER, **task_defaults(first)},
    ) as dag:
        known = [e.name for e in entries]
        for entry in entries:
            with TaskGroup(group_id=entry.name, tooltip=entry.description):
                items = _plan_task(entry, known)
                if entry.vendor is Vendor.MAXSIGHT:
                    _audit_group(entry, items)
                else:
                    _job_group(entry, items)
    return dag


def build_dags(registry: Registry | None = None) -> dict[str, DAG]:
    registry = registry or load_registry()
    return {dag_id: build_dag(dag_id, entries) for dag_id, entries in registry.by_dag().items()}
