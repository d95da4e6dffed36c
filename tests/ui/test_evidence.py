"""The evidence view's calendar against the local S3 server (moto on loopback): each
status from what the lake (and Airflow's metadata) records, the caches (one listing per
prefix, one GET per manifest ETag, one per run record), retired exports, and the app's
routes in-process (401 without a user on every route; the page, the JSON, the manifest)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
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
    MISSING,
    QUALITY_WARNING,
    RUNNING,
    SKIPPED_SNAPSHOT,
    AirflowRun,
    EvidenceReader,
    ExportTarget,
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
    assert "no manifest was published" in planned.detail
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
    found = statuses(reader.export_evidence(where, DAYS, runs))
    assert found[DAYS[-1].isoformat()] == LANDED
    assert found[DAYS[-2].isoformat()] == FAILED  # planned: verify's gap
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


def test_run_days_follow_the_plan() -> None:
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    days, snapshot = app_module.run_days(None, start, start + dt.timedelta(days=1), "UTC")
    assert (days, snapshot) == (frozenset({dt.date(2026, 11, 20)}), dt.date(2026, 11, 20))
    conf = {"range_start": "2026-11-01", "range_end": "2026-11-03"}
    days, snapshot = app_module.run_days(conf, start, start + dt.timedelta(days=1), "UTC")
    assert sorted(days) == [dt.date(2026, 11, d) for d in (1, 2, 3)]
    assert snapshot == dt.date(2026, 11, 3)


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
        land(s3, where, day, csv(2))
    reader.export_evidence(where, DAYS)
    reader.export_evidence(where, DAYS[2:])  # e.g. a manifest link's narrower read
    reader.export_evidence(where, DAYS)
    assert reader.stats["manifest_gets"] == 3
