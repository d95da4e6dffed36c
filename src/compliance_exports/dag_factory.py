"""DAGs from the export registry: one DAG per vendor (per registry ``dag``).

For each registry entry, a task group: ``plan`` resolves the run (data interval or the
trigger form's range, the export subset, dry run) into planned slices, one per
partition day, and the entry's vendor lays out the tasks mapped over them
(:meth:`ExportVendor.add_tasks`); for a job-style vendor::

    plan ──> export[] (submit or re-attach, wait deferred, stream to raw/) ──> land[]
         └─────────────────────────────────────────────────────────────────> verify

(``verify``, when the entry asks for it, checks the run's partitions as an auditor would.)

Nothing here names a vendor: the form fields, the request of a slice and the tasks come
from the vendor packages. Why one DAG per vendor: the vendor's pool, connection and rate
limits are shared by its exports, the trigger form offers a multi-select of that
vendor's exports, and a vendor outage fails one DAG instead of all of them (README,
"What runs").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, task
from airflow.timetables.interval import CronDataIntervalTimetable

from compliance_exports.alerts import dag_alert_kwargs, task_alert_defaults
from compliance_exports.core.vendor import ExportKind, PlannedSlice, TaskKit
from compliance_exports.registry import ExportEntry, Registry, load_registry

log = logging.getLogger(__name__)

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = "compliance-exports"
DOC = """Exports of {vendor} from the export registry (`$COMPLIANCE_EXPORTS_REGISTRY`):

{entries}

Trigger form: pick a subset of exports, optionally a date range (one partition per day
for windowed exports; snapshot exports take the vendor's current state only), a fresh
export instead of re-attaching to jobs an earlier run started, vendor options, or a dry
run that validates and plans, and tests each selected export's connection with one cheap
read (nothing is submitted or exported): a dry run whose credentials or requests would
fail fails, naming the export and the vendor's message.
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
            description=(
                "Validate and plan (logged), and test each export's connection with one "
                "read: fails if the credentials would; submits and exports nothing."
            ),
            section="What to export",
        ),
    }
    for vendor in dict.fromkeys(e.vendor for e in entries):
        params.update(vendor.form_params([e for e in entries if e.vendor is vendor]))
    return params


# --- plan: params + data interval -> slices -------------------------------------------


def plan_items(
    entry: ExportEntry, known: Sequence[str], context: Mapping[str, Any]
) -> list[PlannedSlice]:
    """The planned slices of this run for ``entry``, each with its vendor kwargs.

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
    slices = plan_slices(policy, request, interval, dt.datetime.now(dt.UTC))
    return [
        PlannedSlice(
            export=entry.name,
            day=s.day.isoformat(),
            slice=s.to_dict(),
            request=entry.vendor.slice_request(entry, s, params),
            fresh_export=bool(params.get("fresh_export", False)),
        )
        for s in slices
    ]


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
    def plan(**context: Any) -> list[PlannedSlice]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from compliance_exports.core.errors import ExportValidationError
        from compliance_exports.runs import NothingToExport, is_dry_run

        try:
            items = plan_items(entry, known, context)
        except ExportValidationError as exc:
            raise AirflowFailException(f"invalid trigger parameters: {exc}") from None
        except NothingToExport as exc:
            log.info("%s", exc)
            raise AirflowSkipException(str(exc)) from None
        for item in items:
            log.info("%s: partition dt=%s, request %s", entry.name, item["day"], item["request"])
        if is_dry_run(context.get("params") or {}):
            raise AirflowSkipException(_dry_run(entry, items, context))
        from compliance_exports.pipeline import record_planned_days

        record_planned_days(entry, items, context)
        return items

    return plan()


def _validate_dry_run(entry: ExportEntry, items: Sequence[PlannedSlice]) -> list[str]:
    """Check every slice's request as the run would send it, without sending it; return
    what the vendor's rules refuse (one line per slice)."""
    from compliance_exports.core.errors import ExportValidationError

    refused = []
    for item in items:
        try:
            entry.vendor.dry_run(entry, item)
        except ExportValidationError as exc:
            refused.append(f"dt={item['day']}: {exc}")
            log.error("dry run: %s dt=%s would be refused: %s", entry.name, item["day"], exc)
        else:
            log.info("dry run: %s dt=%s would be exported", entry.name, item["day"])
    return refused


def _days_text(days: Sequence[str]) -> str:
    shown = ", ".join(days) if len(days) <= 5 else f"{days[0]} .. {days[-1]}"
    return f"{len(days)} day(s) ({shown})"


def dry_run_report(entry: ExportEntry, items: Sequence[PlannedSlice]) -> dict[str, Any]:
    """The dry run of ``entry``: every slice checked as it would be sent, and the export's
    connection tested once (the vendor hook's ``test_connection``: one cheap read, no
    export). What would be exported and whether the credentials work, as JSON."""
    refused = _validate_dry_run(entry, items)
    ok, message = entry.vendor.check_connection(entry.conn_id)
    return {
        "export": entry.name,
        "vendor": entry.vendor.name,
        "dataset": entry.dataset,
        "days": [item["day"] for item in items],
        "requests": [{"day": item["day"], "request": item["request"]} for item in items],
        "refused": refused,
        "connection": entry.conn_id,
        "credentials_ok": ok,
        "credentials": message,
    }


def _dry_run(entry: ExportEntry, items: Sequence[PlannedSlice], context: Mapping[str, Any]) -> str:
    """Report the dry run (log, and XCom ``dry_run`` of ``plan``); return its summary, or
    raise ``AirflowFailException`` naming the export when the real run would fail: a
    request the vendor's rules refuse, or credentials the vendor refuses (its message)."""
    from airflow.sdk.exceptions import AirflowFailException

    report = dry_run_report(entry, items)
    would = f"{entry.name} would export {_days_text(report['days'])} of {entry.dataset}"
    verdict = "credentials work" if report["credentials_ok"] else "test failed"
    credentials = f"connection {entry.conn_id!r}: {verdict}: {report['credentials']}"
    log.info("dry run: %s", would)
    (log.info if report["credentials_ok"] else log.error)(
        "dry run: %s: %s", entry.name, credentials
    )
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key="dry_run", value=report)
    problems = list(report["refused"])
    if not report["credentials_ok"]:
        problems.insert(0, credentials)
    if problems:
        raise AirflowFailException(
            f"dry run of {entry.name}: the run would fail: " + "; ".join(problems)
        )
    return f"dry run: {would}; {credentials}"


def _land_task(entry: ExportEntry) -> Callable[..., Any]:
    """``land(trigger_rule=...)``: the task that lands a raw object as its partition, to
    map over ``{"raw", "planned"}`` kwargs (an operator class: OpenLineage asks it for
    its datasets, docs/DESIGN.md "Lineage")."""
    from compliance_exports.landing.operator import LandOperator, entry_asset

    operator = LandOperator.for_entry(entry)

    def make(trigger_rule: str = "all_success") -> Any:
        return operator.partial(
            task_id="land",
            outlets=[entry_asset(entry)],
            trigger_rule=trigger_rule,
            **task_defaults(entry),
        )

    return make


def _attach_task(entry: ExportEntry) -> Callable[..., Any]:
    """``attach()``: records the other originals of every slice's day in its manifest."""

    def make() -> Any:
        @task(task_id="attach_evidence", **task_defaults(entry))
        def attach_evidence(
            planned: Sequence[Mapping[str, Any]],
            evidence: Sequence[Sequence[Mapping[str, Any]] | None],
        ) -> list[str]:
            """Record each day's originals among ``evidence`` (a mapped task's results,
            e.g. audit PDFs) in the manifest ``land`` published for it: one task a run."""
            from compliance_exports.pipeline import attach_export_evidence, evidence_of_day

            return [
                attach_export_evidence(entry, piece, evidence_of_day(evidence, piece["day"]))
                for piece in planned
            ]

        return attach_evidence

    return make


def _verify_task(entry: ExportEntry) -> Any:
    # runs when nothing before it failed and something ran (a run without PDFs skips
    # attach_evidence; a dry run or a skipped snapshot skips everything, verify too)
    @task(task_id="verify", trigger_rule="none_failed_min_one_success", **task_defaults(entry))
    def verify(planned: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Verify this run's partitions as an auditor would (``python -m
        compliance_exports verify``): fails on any integrity problem."""
        from compliance_exports.pipeline import verify_planned_days

        return verify_planned_days(entry, planned)

    return verify


def _lake_kwargs(entry: ExportEntry) -> dict[str, Any]:
    return {
        "dataset": entry.dataset,
        "bucket": entry.lake.bucket,
        "prefix": entry.lake.prefix,
        "aws_conn_id": entry.lake.aws_conn_id,
        "server_side_encryption": entry.lake.sse,
        "kms_key_id": entry.lake.kms_key_id,
        "object_lock_mode": entry.lake.object_lock_mode,
        "object_lock_days": entry.lake.object_lock_days,
    }


def task_kit(entry: ExportEntry) -> TaskKit:
    return TaskKit(
        common={"conn_id": entry.conn_id, "pool": entry.pool, **task_defaults(entry)},
        lake=_lake_kwargs(entry),
        land=_land_task(entry),
        attach=_attach_task(entry),
    )


# --- DAGs --------------------------------------------------------------------------------


def build_dag(dag_id: str, entries: Sequence[ExportEntry]) -> DAG:
    first = entries[0]
    vendors = sorted({e.vendor.name for e in entries})
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
        default_args={"owner": OWNER, **task_defaults(first), **task_alert_defaults(entries)},
        **dag_alert_kwargs(dag_id, entries),
    ) as dag:
        known = [e.name for e in entries]
        for entry in entries:
            with TaskGroup(group_id=entry.name, tooltip=entry.description) as group:
                planned = _plan_task(entry, known)
                entry.vendor.add_tasks(entry, planned, task_kit(entry))
                if entry.verify:
                    leaves = list(group.get_leaves())
                    verify = _verify_task(entry)(planned)
                    for leaf in leaves:
                        leaf >> verify
    return dag


def build_dags(registry: Registry | None = None) -> dict[str, DAG]:
    registry = registry or load_registry()
    return {dag_id: build_dag(dag_id, entries) for dag_id, entries in registry.by_dag().items()}
