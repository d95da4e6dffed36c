"""The evidence view's FastAPI app, served by the Airflow api-server under ``PREFIX``.

Every route depends on the api-server's own ``requires_authenticated()``: an anonymous
request gets 401, a browser logged in to the Airflow UI (its ``_token`` cookie) or a
REST client with a Bearer token passes. FastAPI's own /docs, /redoc and /openapi.json
are switched off, so no route escapes the dependency. See docs/EVIDENCE_VIEW.md.

Routes (under ``/compliance-evidence``):

* ``/``: the page (static HTML + JS, no build step);
* ``/api/evidence?days=90[&last=YYYY-MM-DD]``: the calendar of every export as JSON
  (``days`` days ending ``last``, default yesterday);
* ``/manifest/<export>/<YYYY-MM-DD>``: the day's live manifest, as published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_authenticated
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from compliance_exports.core.vendor import ExportKind
from compliance_exports.ui import PREFIX
from compliance_exports.ui.evidence import (
    DEFAULT_DAYS,
    MAX_DAYS,
    STATUSES,
    AirflowRun,
    EvidenceReader,
    ExportEvidence,
    ExportTarget,
    read_object,
    window,
)

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("evidence.html")
EXPORTS_AT_ONCE = 8
MANIFESTS_AT_ONCE = 8  # per export
POOL_CONNECTIONS = EXPORTS_AT_ONCE * MANIFESTS_AT_ONCE
CLIENT_TTL = 300.0  # seconds an S3 client (and its connection's credentials) is reused
_FAILED_TASK_STATES = ("failed", "upstream_failed")
#: the api-server's own authentication dependency, on every route of the app
AUTHENTICATED = requires_authenticated()


# --- S3 clients and the registry ---------------------------------------------------------


class _Clients:
    """One boto3 S3 client per Airflow connection id, as the DAGs make it (S3Hook)."""

    def __init__(self, ttl: float = CLIENT_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[float, Any]] = {}

    def __call__(self, aws_conn_id: str) -> Any:
        now = time.monotonic()
        with self._lock:
            cached = self._clients.get(aws_conn_id)
            if cached and cached[0] > now:
                return cached[1]
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        # the connection's own botocore config (extra.config_kwargs), with a pool as large
        # as the reads the view makes at once (exports in parallel, manifests in parallel)
        own = S3Hook(aws_conn_id=aws_conn_id).conn_config.botocore_config or Config()
        config = own.merge(Config(max_pool_connections=POOL_CONNECTIONS))
        client = S3Hook(aws_conn_id=aws_conn_id, config=config).get_conn()
        with self._lock:
            self._clients[aws_conn_id] = (now + self.ttl, client)
        return client


_registry_cache: dict[str, tuple[float, Any]] = {}


def current_registry() -> Any:
    """The registry the DAGs use (:func:`~compliance_exports.registry.registry_path`:
    ``$COMPLIANCE_EXPORTS_REGISTRY``, else the checkout's own file), parsed again when
    the file changes; 503 naming the problem when there is none or it is invalid."""
    from compliance_exports.registry import RegistryError, load_registry, registry_path

    try:
        path = str(registry_path())
        mtime = Path(path).stat().st_mtime
    except (RegistryError, OSError) as exc:
        raise HTTPException(503, f"the evidence view has no export registry: {exc}") from None
    cached = _registry_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        raise HTTPException(503, f"the export registry is invalid: {exc}") from None
    _registry_cache[path] = (mtime, registry)
    return registry


def registry_targets(registry: Any) -> list[ExportTarget]:
    """The registry's exports, in its order."""
    return [ExportTarget.of(entry) for entry in registry.entries]


def _lakes(targets: Iterable[ExportTarget]) -> list[tuple[str, str, str]]:
    """``(aws_conn_id, bucket, prefix)`` of each lake the targets land in."""
    return sorted({(t.aws_conn_id, t.bucket, t.prefix) for t in targets})


def export_targets(reader: EvidenceReader, registry: Any) -> list[ExportTarget]:
    """Every export of the registry, then every dataset of their lakes no entry lands any
    more (a retired export's evidence stays; its ``<dataset>__changes`` partitions are
    its own snapshot's and not listed); :func:`evidence_of` drops those with nothing in
    the window."""
    targets = registry_targets(registry)
    known = {(t.bucket, t.prefix, t.vendor, t.dataset) for t in targets}
    for conn_id, bucket, prefix in _lakes(targets):
        for vendor, dataset in reader.lake_datasets(conn_id, bucket, prefix):
            base = dataset.removesuffix("__changes")
            if (bucket, prefix, vendor, dataset) in known or (
                base != dataset and (bucket, prefix, vendor, base) in known
            ):
                continue
            targets.append(ExportTarget.retired(vendor, dataset, conn_id, bucket, prefix))
    return targets


def evidence_of(
    reader: EvidenceReader,
    target: ExportTarget,
    span: Sequence[dt.date],
    runs: Sequence[AirflowRun],
) -> ExportEvidence | None:
    """One export's calendar; a retired export only when it has a manifest in the
    window (a snapshot when its manifests say so: ``data_interval.extracted_at``)."""
    if not target.in_registry:
        listed = reader.manifests(target, span[0])  # cached: the calendar reads them again
        manifests = [summary for day, (_, summary) in listed.items() if day <= span[-1]]
        if not manifests:
            return None
        if any(summary.snapshot for summary in manifests):
            target = dataclasses.replace(target, kind=ExportKind.SNAPSHOT)
    return reader.export_evidence(target, span, runs)


def manifest_target(reader: EvidenceReader, registry: Any, export: str) -> ExportTarget | None:
    """The export named ``export`` on the page: a registry entry, or a retired dataset
    (``<vendor>.<dataset>``) of one of the registry's lakes; None when there is none."""
    targets = registry_targets(registry)
    for target in targets:
        if target.name == export:
            return target
    vendor, _, dataset = export.partition(".")
    for conn_id, bucket, prefix in _lakes(targets):
        if (vendor, dataset) in reader.lake_datasets(conn_id, bucket, prefix):
            return ExportTarget.retired(vendor, dataset, conn_id, bucket, prefix)
    return None


# --- Airflow's metadata --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a DAG run's plan task plans: its days (oldest first) and the exports it
    selected (empty: all of its DAG's)."""

    days: tuple[dt.date, ...]
    exports: frozenset[str]

    @property
    def snapshot_day(self) -> dt.date | None:
        """The day a snapshot is taken for (the last)."""
        return self.days[-1] if self.days else None


def run_plan(
    conf: Mapping[str, Any] | None,
    interval: tuple[dt.datetime, dt.datetime] | None,
    run_after: dt.datetime | None,
    timezone: str,
    known: Sequence[str],
) -> RunPlan | None:
    """A DAG run's plan, read as its plan task reads it (the trigger form's ``conf``
    through :meth:`compliance_exports.runs.RunRequest.from_params`, the days through
    :func:`~compliance_exports.runs.plan_days`; ``known``: its DAG's exports). None when
    the run lands nothing, whatever its state: a dry run (its plan only validates and
    tests the credentials), or trigger parameters the plan refuses."""
    from compliance_exports.core.errors import ExportValidationError
    from compliance_exports.runs import RunRequest, plan_days

    try:
        request = RunRequest.from_params(conf or {}, known)
    except ExportValidationError:
        return None
    if request.dry_run:
        return None
    now = run_after or dt.datetime.now(dt.UTC)  # a run without a logical date plans then
    days = plan_days(request, interval, ZoneInfo(timezone), now)
    return RunPlan(tuple(days), frozenset(request.exports))


def dag_exports(targets: Iterable[ExportTarget]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``dag_id -> (timezone, export names)`` of the targets' DAGs (one timezone per
    DAG: the registry checks it)."""
    dags: dict[str, tuple[str, tuple[str, ...]]] = {}
    for target in targets:
        if target.dag_id:
            names = dags.get(target.dag_id, ("", ()))[1]
            dags[target.dag_id] = (target.timezone, (*names, target.name))
    return dags


def airflow_runs(
    session: Any, dags: Mapping[str, tuple[str, Sequence[str]]], since: dt.datetime
) -> list[AirflowRun]:
    """The DAG runs of ``dags`` (:func:`dag_exports`) created or covering days since
    ``since``, with what each planned (:func:`run_plan`; dry runs left out) and the
    exports (task groups) that have a failed task in each."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import or_, select

    if not dags:
        return []
    rows = session.execute(
        select(
            DagRun.dag_id,
            DagRun.run_id,
            DagRun.state,
            DagRun.data_interval_start,
            DagRun.data_interval_end,
            DagRun.run_after,
            DagRun.conf,
        ).where(
            DagRun.dag_id.in_(list(dags)),
            or_(DagRun.run_after >= since, DagRun.data_interval_end >= since),
        )
    ).all()
    planned = []
    for row in rows:
        timezone, known = dags[row.dag_id]
        interval = None
        if row.data_interval_start is not None and row.data_interval_end is not None:
            interval = (row.data_interval_start, row.data_interval_end)
        conf = row.conf if isinstance(row.conf, Mapping) else None
        plan = run_plan(conf, interval, row.run_after, timezone, known)
        if plan is not None:
            planned.append((row, plan))
    failed: dict[tuple[str, str], set[str]] = {}
    unsuccessful = [row.run_id for row, _ in planned if row.state != "success"]
    if unsuccessful:
        tis = session.execute(
            select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id).where(
                TaskInstance.dag_id.in_(list(dags)),
                TaskInstance.run_id.in_(unsuccessful),
                TaskInstance.state.in_(_FAILED_TASK_STATES),
            )
        ).all()
        for ti in tis:
            group = ti.task_id.split(".", 1)[0]
            failed.setdefault((ti.dag_id, ti.run_id), set()).add(group)
    return [
        AirflowRun(
            dag_id=row.dag_id,
            run_id=row.run_id,
            state=str(getattr(row.state, "value", row.state)),
            days=frozenset(plan.days),
            snapshot_day=plan.snapshot_day,
            failed_exports=frozenset(failed.get((row.dag_id, row.run_id), ())),
            exports=plan.exports,
        )
        for row, plan in planned
    ]


# --- the app ----------------------------------------------------------------------------


def _last_day(targets: Sequence[ExportTarget], now: dt.datetime) -> dt.date:
    """The last complete day: the newest partition a nightly run can have landed."""
    from compliance_exports.runs import last_complete_day

    zones = {target.timezone for target in targets} or {"UTC"}
    return max(last_complete_day(now, ZoneInfo(zone)) for zone in zones)


def calendar(
    reader: EvidenceReader,
    registry: Any,
    days: int,
    session: Any | None,
    now: dt.datetime | None = None,
    last: dt.date | None = None,
) -> dict[str, Any]:
    """The page's data: every export's calendar over ``days`` days ending ``last``
    (default: yesterday, the last complete day)."""
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    span = window(last or _last_day(registry_targets(registry), now), days)
    targets = export_targets(reader, registry)
    runs: list[AirflowRun] = []
    metadata = "unavailable"
    if session is not None:
        since = dt.datetime.combine(span[0], dt.time(), dt.UTC) - dt.timedelta(days=1)
        try:
            runs = airflow_runs(session, dag_exports(targets), since)
            metadata = "ok"
        except Exception as exc:  # the view still shows what the lake holds
            log.warning("evidence view: cannot read DAG runs: %s", exc)
            # the api-server commits the request's session when it closes it: a failed
            # statement must be rolled back first (PostgreSQL refuses to commit it)
            try:
                session.rollback()
            except Exception as again:
                log.warning("evidence view: cannot roll back the session: %s", again)
    exports = _in_parallel(reader, targets, span, runs)
    return {
        "generated_at": now.isoformat(),
        "first": span[0].isoformat(),
        "last": span[-1].isoformat(),
        "days": [day.isoformat() for day in span],
        "statuses": list(STATUSES),
        "metadata": metadata,
        "exports": [export.to_dict() for export in exports],
        "seconds": round(time.perf_counter() - started, 4),
    }


def _in_parallel(
    reader: EvidenceReader,
    targets: Iterable[ExportTarget],
    span: Sequence[dt.date],
    runs: Sequence[AirflowRun],
) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor

    targets = list(targets)
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(EXPORTS_AT_ONCE, len(targets))) as pool:
        found = list(pool.map(lambda t: evidence_of(reader, t, span, runs), targets))
    return [evidence for evidence in found if evidence is not None]


def create_app(reader: EvidenceReader | None = None) -> FastAPI:
    """The evidence view's app; every route requires an authenticated Airflow user."""
    reader = reader or EvidenceReader(_Clients(), workers=MANIFESTS_AT_ONCE)
    app = FastAPI(
        title="Compliance evidence",
        dependencies=[Depends(AUTHENTICATED)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.reader = reader

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        base = str(request.scope.get("root_path", "")).rstrip("/")
        html = PAGE.read_text(encoding="utf-8")
        for name, value in (("__BASE__", base), ("__PREFIX__", PREFIX)):
            html = html.replace(f'"{name}"', json.dumps(value))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/evidence")
    def evidence(
        session: SessionDep,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = DEFAULT_DAYS,
        last: Annotated[dt.date | None, Query()] = None,
    ) -> JSONResponse:
        return JSONResponse(calendar(reader, current_registry(), days, session, last=last))

    @app.get("/manifest/{export}/{day}")
    def manifest(export: str, day: str) -> Response:
        try:
            when = dt.date.fromisoformat(day)
        except ValueError:
            raise HTTPException(422, f"{day!r} is not a YYYY-MM-DD day") from None
        target = manifest_target(reader, current_registry(), export)
        if target is None:
            raise HTTPException(404, f"no export {export!r}")
        from botocore.exceptions import ClientError

        try:
            data, _ = read_object(
                reader.client_for(target.aws_conn_id), target.bucket, target.manifest_key(when)
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise HTTPException(404, f"no manifest of {export} for {day}") from None
            raise HTTPException(502, f"cannot read the manifest: {code}") from None
        return Response(data, media_type="application/json")

    return app
