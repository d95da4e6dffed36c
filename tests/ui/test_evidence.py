"""The evidence view's calendar against the local S3 server (moto on loopback): each
status from what the lake (and Airflow's metadata) records, the caches (one listing per
prefix, one GET per manifest ETag, one per run record), retired exports, and the app's
routes in-process (401 without a user on every route; the page, the JSON, the manifest)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from compliance_exports.core.vendor import ExportKind
from compliance_exports.landing.land import LakeOptions, land_raw_object
from compliance_exports.landing.layout import Partition, new_token
from compliance_exports.landing.quality import CHECKS, QualityPolicy
from compliance_exports.ui import app as app_module
from compliance_exports.ui.evidence import (
    FAILED,
    LANDED,
    MAX_DAYS,
    MISSING,
    QUALITY_WARNING,
    RUNNING,
    SKIPPED_SNAPSHOT,
    AirflowRun,
    EvidenceReader,
    ExportTarget,
    classify_day,
    window,
)
from tests.conftest import LocalS3

pytestmark = pytest.mark.integration

LAST = dt.date(2026, 11, 20)
DAYS = window(LAST, 10)  # 2026-11-11 .. 2026-11-20
SCHEMA = {"id": "string", "score": "int64"}
OFF = {check: "off" for check in CHECKS if check not in {"bad_values", "primary_key_unique"}}


def one_export_registry(name: str) -> Any:
    """The shipped registry's defaults and one windowed Oleria export ``name``."""
    import yaml

    from compliance_exports.registry import DEFAULT_REGISTRY, parse_registry

    defaults = yaml.safe_load(DEFAULT_REGISTRY.read_text())["defaults"]
    oleria = {"context": "ilmEmployeeEvents", "window_field": "createdAt"}
    entry = {"vendor": "oleria", "dataset": name, "kind": "windowed", "oleria": oleria}
    return parse_registry({"defaults": defaults, "exports": {name: {**entry, "schema": SCHEMA}}})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def target(s3: LocalS3, kind: ExportKind = ExportKind.WINDOWED, dataset: str = "ev_events") -> Any:
    return ExportTarget(
        name=dataset,
        vendor="oleria",
        dataset=dataset,
        kind=kind,
        dag_id="oleria_exports",
        bucket=s3.bucket,
        prefix="",
        aws_conn_id=s3.conn_id,
    )


def land(s3: LocalS3, where: ExportTarget, day: dt.date, content: bytes, **policy: str) -> None:
    """Publish ``content`` as the day's version through the real landing code."""
    partition = Partition(where.vendor, where.dataset, day)
    key = partition.raw_key("export.csv", new_token())
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=content)
    raw = {
        "bucket": s3.bucket,
        "key": key,
        "uri": f"s3://{s3.bucket}/{key}",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "version_id": None,
        "downloaded_at": dt.datetime.now(dt.UTC).isoformat(),
        "content_type": "text/csv",
        "filename": "export.csv",
        "vendor": where.vendor,
        "dataset": where.dataset,
        "day": day.isoformat(),
        "vendor_rows": None,
    }
    land_raw_object(
        raw,
        SCHEMA,
        partition,
        lake=LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket),
        export=where.name,
        quality=QualityPolicy.from_mapping({**OFF, **policy}),
    )


def csv(rows: int, header: str = "id,score") -> bytes:
    columns = header.count(",") + 1
    lines = [header, *(",".join([f"{i:04d}", "3"][:columns]) for i in range(rows))]
    return ("\n".join(lines) + "\n").encode()


def record(s3: LocalS3, where: ExportTarget, day: dt.date, run_id: str, when: dt.datetime) -> str:
    """A ``_runs/`` record as the plan task writes it (pipeline.record_planned_days)."""
    key = Partition(where.vendor, where.dataset, day).run_record_key(new_token(when))
    body = {"export": where.name, "day": day.isoformat(), "dag_id": where.dag_id, "run_id": run_id}
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=json.dumps(body).encode())
    return key


class CountingClient:
    """A boto3 client that counts the S3 calls made through it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        return getattr(self.client, name)


@pytest.fixture
def counting(s3: LocalS3) -> CountingClient:
    return CountingClient(s3.client())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader(counting: CountingClient, clock: Clock) -> EvidenceReader:
    return EvidenceReader(lambda _conn: counting, listing_ttl=15.0, clock=clock)


def statuses(evidence: Any) -> dict[str, str]:
    return {day.day: day.status for day in evidence.days}


def test_each_status_of_a_windowed_export(s3: LocalS3, reader: EvidenceReader) -> None:
    where = target(s3)
    early = dt.datetime(2026, 11, 21, 0, 5, tzinfo=dt.UTC)
    # landed, by a run that recorded its plan first
    record(s3, where, DAYS[0], "scheduled__2026-11-11", early)
    land(s3, where, DAYS[0], csv(5))
    land(s3, where, DAYS[1], csv(7))  # landed outside a DAG: no run record
    land(s3, where, DAYS[2], csv(0), empty="warn")  # a quality warning
    land(s3, where, DAYS[3], csv(4, header="id"), missing_columns="warn")
    record(s3, where, DAYS[4], "manual__failed", early)  # planned, nothing published
    record(s3, where, DAYS[5], "manual__going", early)  # planned, its run still going
    # DAYS[6]: Airflow says a task of this export failed for it (no record: plan failed)
    # DAYS[7]: nothing at all
    s3.client().put_object(  # an unreadable manifest
        Bucket=s3.bucket, Key=where.manifest_key(DAYS[8]), Body=b"{not json"
    )
    runs = [
        AirflowRun("oleria_exports", "manual__going", "running", frozenset({DAYS[5]})),
        AirflowRun(
            "oleria_exports",
            "scheduled__2026-11-17",
            "failed",
            frozenset({DAYS[6]}),
            DAYS[6],
            frozenset({where.name}),
        ),
        AirflowRun("oleria_exports", "manual__failed", "failed", frozenset({DAYS[4]})),
    ]
    evidence = reader.export_evidence(where, DAYS, runs)
    found = statuses(evidence)
    assert [found[d.isoformat()] for d in DAYS] == [
        LANDED,
        LANDED,
        QUALITY_WARNING,
        QUALITY_WARNING,
        FAILED,
        RUNNING,
        FAILED,
        MISSING,
        FAILED,
        MISSING,
    ]
    by_day = {d.day: d for d in evidence.days}
    first = by_day[DAYS[0].isoformat()]
    assert (first.rows, first.manifest) == (5, True)
    assert (first.dag_id, first.run_id) == ("oleria_exports", "scheduled__2026-11-11")
    assert by_day[DAYS[1].isoformat()].run_id is None
    assert "empty" in by_day[DAYS[2].isoformat()].detail
    assert by_day[DAYS[2].isoformat()].rows == 0
    assert "missing_columns" in by_day[DAYS[3].isoformat()].detail
    planned = by_day[DAYS[4].isoformat()]
    assert planned.run_id == "manual__failed"
    assert f"a run planned this day (s3://{s3.bucket}/{where.runs_base}dt=" in planned.detail
    assert "never published" in planned.detail  # verify's unpublished_day
    assert by_day[DAYS[6].isoformat()].run_id == "scheduled__2026-11-17"
    assert "not JSON" in by_day[DAYS[8].isoformat()].detail
    assert evidence.counts[LANDED] == 2
    assert evidence.counts[MISSING] == 2
    assert evidence.last_landed_at is not None


def test_snapshot_days_no_run_planned_are_skipped(s3: LocalS3, reader: EvidenceReader) -> None:
    where = target(s3, ExportKind.SNAPSHOT, "ev_snapshot")
    now = dt.datetime(2026, 11, 21, 0, 5, tzinfo=dt.UTC)
    land(s3, where, DAYS[-1], csv(3))
    record(s3, where, DAYS[-2], "scheduled__2026-11-19", now)
    # a run over DAYS[-3] whose other export failed: not this snapshot's failure
    runs = [
        AirflowRun(
            "oleria_exports", "r", "failed", frozenset({DAYS[-3]}), DAYS[-3], frozenset({"x"})
        )
    ]
    evidence = reader.export_evidence(where, DAYS, runs)
    found = statuses(evidence)
    assert found[DAYS[-1].isoformat()] == LANDED
    assert found[DAYS[-2].isoformat()] == FAILED  # planned: verify's gap
    assert evidence.days[-2].detail.startswith("a run planned this day (s3://")
    assert f"no manifest was published at s3://{s3.bucket}/" in evidence.days[-2].detail
    assert {found[d.isoformat()] for d in DAYS[:-2]} == {SKIPPED_SNAPSHOT}


def test_the_run_link_is_the_run_that_published(s3: LocalS3, reader: EvidenceReader) -> None:
    where = target(s3, dataset="ev_link")
    record(s3, where, DAYS[0], "first", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    land(s3, where, DAYS[0], csv(2))
    # a later run planned the day again and has not published (yet): the live version
    # is still the first run's
    record(s3, where, DAYS[0], "later", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    (day, *_) = reader.export_evidence(where, DAYS).days
    assert (day.status, day.run_id) == (LANDED, "first")


def test_caches_one_listing_per_prefix_one_get_per_etag(
    s3: LocalS3, reader: EvidenceReader, counting: CountingClient, clock: Clock
) -> None:
    where = target(s3, dataset="ev_cache")
    for day in DAYS[:4]:
        record(s3, where, day, f"run-{day}", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        land(s3, where, day, csv(3))
    first = reader.export_evidence(where, DAYS)
    assert reader.stats["manifest_gets"] == 4
    assert reader.stats["record_gets"] == 4
    assert counting.calls.get("get_object") == 8

    again = reader.export_evidence(where, DAYS)  # within the listing TTL: no S3 call
    assert again.to_dict() == first.to_dict()
    assert counting.calls.get("get_object") == 8
    assert counting.calls.get("get_paginator") == 2  # curated + _runs

    land(s3, where, DAYS[1], csv(9))  # a new version: a new ETag
    assert statuses(reader.export_evidence(where, DAYS)) == statuses(first)  # TTL not over
    clock.now += 16
    fresh = reader.export_evidence(where, DAYS)
    assert {d.day: d.rows for d in fresh.days}[DAYS[1].isoformat()] == 9
    assert reader.stats["manifest_gets"] == 5  # only the changed manifest again
    assert reader.stats["record_gets"] == 4  # records are never rewritten
    assert counting.calls.get("get_paginator") == 4


def test_retired_exports_are_listed_from_the_lake(s3: LocalS3, reader: EvidenceReader) -> None:
    registry = one_export_registry("ev_current")
    (entry,) = registry.entries
    current = ExportTarget.of(entry)
    assert (current.bucket, current.aws_conn_id) == (s3.bucket, s3.conn_id)
    retired = target(s3, dataset="ev_retired")
    land(s3, retired, DAYS[3], csv(2))
    land(s3, target(s3, dataset="ev_current__changes"), DAYS[3], csv(2))
    names = [t.name for t in app_module.export_targets(reader, registry)]
    assert names[0] == "ev_current"
    assert "oleria.ev_retired" in names
    assert "oleria.ev_current__changes" not in names
    shown = app_module.calendar(reader, registry, len(DAYS), None, last=LAST)["exports"]
    (row,) = [e for e in shown if e["export"] == "oleria.ev_retired"]
    assert row["in_registry"] is False
    assert row["days"][3]["status"] == LANDED
    earlier = app_module.calendar(reader, registry, 2, None, last=DAYS[1])["exports"]
    assert "oleria.ev_retired" not in [e["export"] for e in earlier]  # nothing in its window


def test_a_run_plans_what_its_plan_task_plans() -> None:
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    interval = (start, start + dt.timedelta(days=1))
    known = ["ev_a", "ev_b"]
    plan = app_module.run_plan(None, interval, start, "UTC", known)
    assert plan == app_module.RunPlan((dt.date(2026, 11, 20),), frozenset())
    assert plan.snapshot_day == dt.date(2026, 11, 20)
    conf = {"range_start": "2026-11-01", "range_end": "2026-11-03", "exports": ["ev_b"]}
    plan = app_module.run_plan(conf, interval, start, "UTC", known)
    assert plan is not None
    assert plan.days == tuple(dt.date(2026, 11, d) for d in (1, 2, 3))
    assert (plan.snapshot_day, plan.exports) == (dt.date(2026, 11, 3), frozenset({"ev_b"}))
    # the interval's days in the DAG's timezone, as runs.plan_slices reads them
    plan = app_module.run_plan({}, interval, start, "America/New_York", known)
    assert plan is not None
    assert plan.days == (dt.date(2026, 11, 19), dt.date(2026, 11, 20))
    # a manual run without a logical date: the last complete day when it was created
    plan = app_module.run_plan({}, None, start, "UTC", known)
    assert plan is not None
    assert plan.days == (dt.date(2026, 11, 19),)
    # a dry run lands nothing; nor does a run whose trigger parameters the plan refuses
    assert app_module.run_plan({"dry_run": True}, interval, start, "UTC", known) is None
    assert app_module.run_plan({"exports": ["nope"]}, interval, start, "UTC", known) is None
    assert app_module.run_plan({"range_start": "2026-11-01"}, interval, start, "UTC", known) is None


class FakeSession:
    """Answers airflow_runs' two queries (the DAG runs, then their failed task
    instances) with the rows given; records rollbacks."""

    def __init__(self, *answers: list[Any], error: Exception | None = None) -> None:
        self.answers = list(answers)
        self.error = error
        self.rollbacks = 0

    def execute(self, _statement: Any) -> Any:
        if self.error is not None:
            raise self.error
        rows = self.answers.pop(0)
        return SimpleNamespace(all=lambda: rows)

    def rollback(self) -> None:
        self.rollbacks += 1


def dag_run(run_id: str, state: str, day: dt.date, **conf: Any) -> Any:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return SimpleNamespace(
        dag_id="oleria_exports",
        run_id=run_id,
        state=state,
        data_interval_start=start,
        data_interval_end=start + dt.timedelta(days=1),
        run_after=start + dt.timedelta(days=1),
        conf=conf,
    )


def failed_task(run_id: str, group: str) -> Any:
    return SimpleNamespace(dag_id="oleria_exports", run_id=run_id, task_id=f"{group}.plan")


def test_dry_runs_and_other_exports_runs_leave_a_day_alone(s3: LocalS3) -> None:
    windowed, snapshot = target(s3, dataset="ev_w"), target(s3, ExportKind.SNAPSHOT, "ev_s")
    other = "ev_other"
    dags = app_module.dag_exports([windowed, snapshot, dataclasses.replace(windowed, name=other)])
    assert dags == {"oleria_exports": ("UTC", ("ev_w", "ev_s", other))}
    rows = [
        # a dry run whose preflight failed the plan of every export (wrong credentials)
        dag_run("manual__dry_failed", "failed", DAYS[2], dry_run=True),
        dag_run("manual__dry_going", "running", DAYS[3], dry_run=True),  # a dry run going
        dag_run("manual__other_failed", "failed", DAYS[4], exports=[other]),
        dag_run("manual__other_going", "running", DAYS[5], exports=[other]),
        dag_run("manual__ours_going", "running", DAYS[6], exports=[other, "ev_w", "ev_s"]),
    ]
    tis = [
        *(failed_task("manual__dry_failed", name) for name in ("ev_w", "ev_s", other)),
        failed_task("manual__other_failed", other),
    ]
    session = FakeSession(rows, tis)
    since = dt.datetime.combine(DAYS[0], dt.time(), dt.UTC)
    runs = app_module.airflow_runs(session, dags, since)
    assert [run.run_id for run in runs] == [
        "manual__other_failed",
        "manual__other_going",
        "manual__ours_going",
    ]
    assert runs[0].failed_exports == frozenset({other})
    assert runs[1].exports == frozenset({other})

    def status(where: ExportTarget, day: dt.date) -> str:
        return classify_day(where, day, None, [], None, runs).status

    for day in DAYS[2:6]:
        assert status(windowed, day) == MISSING, day
        assert status(snapshot, day) == SKIPPED_SNAPSHOT, day
    # a run that selected them still shows them running
    assert (status(windowed, DAYS[6]), status(snapshot, DAYS[6])) == (RUNNING, RUNNING)


def test_an_unreadable_metadata_session_is_rolled_back(s3: LocalS3, reader: EvidenceReader) -> None:
    registry = one_export_registry("ev_rollback")
    session = FakeSession(error=RuntimeError("the database went away"))
    data = app_module.calendar(reader, registry, len(DAYS), session, last=LAST)
    assert data["metadata"] == "unavailable"
    assert session.rollbacks == 1
    assert [e["export"] for e in data["exports"]] == ["ev_rollback"]


# --- the app in-process --------------------------------------------------------------------


def _paths(app: Any) -> list[str]:
    return [
        route.path.replace("{export}", "ev_app").replace("{day}", DAYS[0].isoformat())
        for route in app.routes
        if isinstance(route, APIRoute)
    ]


def test_every_route_refuses_an_anonymous_request() -> None:
    app = app_module.create_app(EvidenceReader(lambda _conn: None))
    paths = _paths(app)
    assert sorted(paths) == sorted(
        ["/", "/api/evidence", f"/manifest/ev_app/{DAYS[0].isoformat()}"]
    )
    # FastAPI's own documentation routes would escape the dependency: none are served
    assert {getattr(r, "path", None) for r in app.routes} == {
        "/",
        "/api/evidence",
        "/manifest/{export}/{day}",
    }
    client = TestClient(app)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"detail": "Not authenticated"}


@pytest.fixture
def signed_in(s3: LocalS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with the api-server's auth dependency answered (a signed-in user) and no
    metadata session, over a registry of one export in the local S3 bucket."""
    from airflow.api_fastapi.common.db.common import _get_session

    registry = one_export_registry("ev_app")
    monkeypatch.setattr(app_module, "current_registry", lambda: registry)
    app = app_module.create_app(EvidenceReader(lambda _conn: s3.client()))

    def no_session() -> Iterator[None]:
        yield None

    app.dependency_overrides[app_module.AUTHENTICATED] = lambda: None
    app.dependency_overrides[_get_session] = no_session
    with TestClient(app, root_path="/compliance-evidence") as client:
        yield client


def test_the_app_serves_page_calendar_and_manifest(s3: LocalS3, signed_in: TestClient) -> None:
    where = target(s3, dataset="ev_app")
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    land(s3, where, yesterday, csv(6))
    land(s3, target(s3, dataset="ev_gone"), yesterday, csv(1))  # a retired export's day

    page = signed_in.get("/")
    assert page.status_code == 200
    assert 'const BASE = "/compliance-evidence"' in page.text
    assert f'const PREFIX = "{app_module.PREFIX}"' in page.text
    assert "__BASE__" not in page.text
    assert "__PREFIX__" not in page.text

    data = signed_in.get("/api/evidence", params={"days": 5}).json()
    assert data["last"] == yesterday.isoformat()
    assert len(data["days"]) == 5
    assert data["metadata"] == "unavailable"
    (export,) = [e for e in data["exports"] if e["export"] == "ev_app"]
    assert export["days"][-1]["status"] == LANDED
    assert export["days"][-1]["rows"] == 6
    assert {d["status"] for d in export["days"][:-1]} == {MISSING}
    assert signed_in.get("/api/evidence", params={"days": 0}).status_code == 422

    manifest = signed_in.get(f"/manifest/ev_app/{yesterday.isoformat()}")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"] == "application/json"
    assert manifest.json()["rows"] == 6
    assert manifest.json()["export"] == "ev_app"
    missing_day = (yesterday - dt.timedelta(days=1)).isoformat()
    assert signed_in.get(f"/manifest/ev_app/{missing_day}").status_code == 404
    assert signed_in.get("/manifest/nope/2026-11-20").status_code == 404
    retired = signed_in.get(f"/manifest/oleria.ev_gone/{yesterday.isoformat()}")
    assert retired.status_code == 200
    assert retired.json()["dataset"] == "ev_gone"
    assert signed_in.get("/manifest/ev_app/..%2Fsecret").status_code in (404, 422)


def test_the_plugin_declares_the_app_and_the_nav_entry() -> None:
    from compliance_exports.ui.plugin import EvidencePlugin

    (fastapi_app,) = EvidencePlugin.fastapi_apps
    assert fastapi_app["url_prefix"] == "/compliance-evidence"
    reserved = ("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2")
    assert not fastapi_app["url_prefix"].startswith(reserved)
    (view,) = EvidencePlugin.external_views
    assert view["destination"] == "nav"
    assert view["href"] == "/compliance-evidence/"


def test_loading_the_plugin_builds_no_app_the_first_request_does() -> None:
    """Every Airflow process loads the plugin; only the api-server serves the app, so the
    plugin imports neither FastAPI nor the app until a request comes."""
    import subprocess
    import sys

    probe = (
        "import sys; import compliance_exports.ui.plugin; "
        "print(sorted(m for m in ('fastapi', 'compliance_exports.ui.app') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

    from compliance_exports.ui.plugin import LazyEvidenceApp

    lazy = LazyEvidenceApp()
    assert lazy._app is None
    assert TestClient(lazy).get("/api/evidence").status_code == 401  # the real app, anonymous
    assert lazy._app is not None


def test_no_registry_answers_503_naming_it(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.api_fastapi.common.db.common import _get_session

    monkeypatch.setenv("COMPLIANCE_EXPORTS_REGISTRY", str(tmp_path / "nowhere.yaml"))
    app = app_module.create_app(EvidenceReader(lambda _conn: None))

    def no_session() -> Iterator[None]:
        yield None

    app.dependency_overrides[app_module.AUTHENTICATED] = lambda: None
    app.dependency_overrides[_get_session] = no_session
    response = TestClient(app).get("/api/evidence")
    assert response.status_code == 503
    assert "nowhere.yaml" in response.json()["detail"]


def test_a_shorter_window_keeps_the_longer_ones_cache(
    s3: LocalS3, reader: EvidenceReader, counting: CountingClient
) -> None:
    where = target(s3, dataset="ev_windows")
    for day in DAYS[:3]:
        record(s3, where, day, f"run-{day}", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        land(s3, where, day, csv(2))
    reader.export_evidence(where, DAYS)
    reader.export_evidence(where, DAYS[2:])  # e.g. a manifest link's narrower read
    reader.export_evidence(where, DAYS)
    # manifests and run records: the same eviction rule (up to MAX_DAYS before the window)
    assert (reader.stats["manifest_gets"], reader.stats["record_gets"]) == (3, 3)
    # a window starting more than MAX_DAYS after them forgets both
    later = DAYS[-1] + dt.timedelta(days=MAX_DAYS + 5)
    reader.export_evidence(where, [later])
    assert reader._manifests[(where.bucket, where.curated_base)] == {}
    assert reader._records[(where.bucket, where.runs_base)] == {}


def test_parallel_reads_count_every_call(s3: LocalS3, reader: EvidenceReader) -> None:
    """The readers' stats are counted under its lock: parallel exports lose no count."""
    wheres = [target(s3, dataset=f"ev_par{n}") for n in range(6)]
    for where in wheres:
        for day in DAYS[:3]:
            record(s3, where, day, f"run-{day}", dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
            land(s3, where, day, csv(1))
    threads = [threading.Thread(target=reader.export_evidence, args=(w, DAYS)) for w in wheres]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reader.stats == {"lists": 12, "manifest_gets": 18, "record_gets": 18}
