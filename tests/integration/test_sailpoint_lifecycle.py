"""SailPoint's durable export task end to end: its simulator over HTTP, the local S3 server."""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from compliance_exports.core.errors import ExportError, ExportValidationError
from compliance_exports.core.hooks import ExportNotFoundError
from compliance_exports.core.states import ExportPhase
from compliance_exports.registry import load_registry
from compliance_exports.vendors.sailpoint.hook import SailPointHook
from compliance_exports.vendors.sailpoint.operators import SailPointReportOperator
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger
from include.simulators import RunningSimulator, start_simulator
from include.simulators.sailpoint import FOREIGN_LAUNCHER
from tests.conftest import LocalS3, without_run
from tests.integration.conftest import (
    FAST_RETRIES,
    arm,
    configure,
    deferred_trigger,
    next_try,
    requests_seen,
    run_deferrable,
    run_trigger,
    use_connection,
)

pytestmark = pytest.mark.integration

IDENTITIES = {"report_type": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}


def operator(s3: LocalS3, **kwargs: Any) -> SailPointReportOperator:
    kwargs = {**IDENTITIES, "dataset": "identities", **kwargs}
    return SailPointReportOperator(
        task_id="export", bucket=s3.bucket, aws_conn_id=s3.conn_id, poll_interval=0.1, **kwargs
    )


def export(context: dict[str, Any], s3: LocalS3, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = run_deferrable(operator(s3, **kwargs), context)
    return result


def runs(sim: RunningSimulator) -> list[dict[str, Any]]:
    return [r for r in requests_seen(sim, "/run") if r["method"] == "POST"]


def exports_of(sim: RunningSimulator) -> dict[str, dict[str, Any]]:
    """The simulator's facts of every report task (arguments, launcher, status)."""
    with sim.admin() as admin:
        exports: dict[str, dict[str, Any]] = admin.get("/_sim/facts").json()["exports"]
    return exports


@pytest.fixture
def own_sailpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RunningSimulator]]:
    """``own_sailpoint(profile=..., **settings)``: a simulator of this test alone, the
    ``sailpoint_default`` connection on it; its answers checked against the OpenAPI
    document and the simulator stopped after the test."""
    from tests.openapi.sailpoint_validator import assert_answers_valid

    started: list[RunningSimulator] = []

    def make(profile: str = "default", **settings: Any) -> RunningSimulator:
        sim = start_simulator(
            "sailpoint", seed=11, profile=profile, **{"rows": 25, "latency": 0.3, **settings}
        )
        started.append(sim)
        conn = sim.connection()
        conn["extra"] = {**conn["extra"], **FAST_RETRIES}
        monkeypatch.setenv("AIRFLOW_CONN_SAILPOINT_DEFAULT", json.dumps(conn))
        return sim

    yield make
    for sim in started:
        try:
            assert_answers_valid(sim.base_url)
        finally:
            sim.stop()


@pytest.mark.parametrize(("layout", "prefix"), [("v3", "/v3/reports"), ("unified", "/reports/v1")])
def test_report_lands_in_the_raw_zone_with_either_api_layout(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any], layout: str, prefix: str
) -> None:
    use_connection("sailpoint_default", sailpoint, api_layout=layout)
    raw = export(context, s3)
    assert without_run(raw["key"]).endswith("/dataset=identities/dt=2026-11-20/identities.csv")
    assert s3.read(raw["key"]).count(b"\n") >= 25
    assert raw["request"] == {
        "reportType": "IDENTITIES_DETAILS",
        "arguments": {"correlatedOnly": True},
    }
    api_paths = {r["path"] for r in requests_seen(sailpoint) if "/oauth/" not in r["path"]}
    assert api_paths
    assert all(path.startswith(prefix) for path in api_paths)


def test_search_export_zip_is_kept_whole(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    search = {"query": "*", "indices": ["identities"], "columns": "id,name"}
    raw = export(
        context, s3, report_type="SEARCH_EXPORT", arguments=search, dataset="search_export"
    )
    assert raw["key"].endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(s3.read(raw["key"]))) as archive:
        assert archive.namelist()


def test_search_export_zip_served_as_csv_is_recognised_by_its_bytes(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """The spec lists only application/csv and application/pdf for the file, yet a
    SEARCH_EXPORT is a zip of CSVs: the zip is stored (and landed) as a zip."""
    search = {"query": "*", "indices": ["identities"], "columns": "id,name"}
    configure(sailpoint, zip_content_type="application/csv")
    try:
        raw = export(
            context, s3, report_type="SEARCH_EXPORT", arguments=search, dataset="search_export"
        )
    finally:
        configure(sailpoint, zip_content_type="application/zip")
    assert raw["key"].endswith("/search_export.zip")
    assert raw["content_type"] == "application/csv"  # as the vendor said; the bytes decide
    assert s3.read(raw["key"])[:4] == b"PK\x03\x04"


def test_missing_required_argument_is_refused_before_any_request(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    with pytest.raises(ExportValidationError, match="sourceName"):
        export(context, s3, report_type="ACCOUNTS", arguments={"application": "x"})
    assert requests_seen(sailpoint) == []


def test_failed_report_is_run_again_and_lands(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="job_failure", count=1)
    raw = export(context, s3)
    assert [job.get("ended") for job in raw["jobs"]] == ["FAILURE", None]
    assert len(runs(sailpoint)) == 2


def report_trigger(context: dict[str, Any], s3: LocalS3) -> SailPointReportTrigger:
    trigger = deferred_trigger(operator(s3), context)
    assert isinstance(trigger, SailPointReportTrigger)
    return trigger


def test_token_expiry_mid_poll_is_refreshed_and_replayed_in_the_triggerer(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(sailpoint, latency=1.0)
    try:
        trigger = report_trigger(context, s3)
        arm(sailpoint, kind="token_expiry", count=1, path="/result")
        events = run_trigger(trigger)
    finally:
        configure(sailpoint, latency=0.3)
    assert [e["status"] for e in events] == ["success"]
    seen = [(r["path"], r["status"]) for r in requests_seen(sailpoint)]
    rejected = [i for i, (path, status) in enumerate(seen) if status == 401]
    assert len(rejected) == 1
    # the rejected poll is followed by one new token and the same poll, now accepted
    assert seen[rejected[0] + 1] == ("/oauth/token", 200)
    assert seen[rejected[0] + 2] == (seen[rejected[0]][0], 200)


def test_rate_limit_storm_in_the_triggerer_is_waited_out(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    configure(sailpoint, latency=1.0)
    try:
        trigger = report_trigger(context, s3)
        arm(sailpoint, kind="rate_limit", count=3, retry_after=0, path="/result")
        arm(sailpoint, kind="server_error", count=2, status=502, path="/result")
        events = run_trigger(trigger)
    finally:
        configure(sailpoint, latency=0.3)
    assert [e["status"] for e in events] == ["success"]
    statuses = [r["status"] for r in requests_seen(sailpoint, "/result")]
    assert statuses.count(429) == 3
    assert statuses.count(502) == 2


def test_report_that_never_finishes_is_cancelled_at_the_deadline(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    arm(sailpoint, kind="never_finish")
    op = operator(s3, wait_timeout=1)
    [event] = run_trigger(deferred_trigger(op, context))
    assert event["status"] == "timeout"
    assert event["cancelled"]
    with pytest.raises(ExportError, match=r"not done within wait_timeout.*cancelled"):
        op.execute_complete(context, event)
    cancels = [r for r in requests_seen(sailpoint, "/cancel") if r["method"] == "POST"]
    assert [r["path"] for r in cancels] == [f"/v3/reports/{event['job_id']}/cancel"]


def never_finishing_trigger(sailpoint: RunningSimulator) -> SailPointReportTrigger:
    """A trigger waiting on a report that never finishes."""
    arm(sailpoint, kind="never_finish")
    job_id = SailPointHook().submit_export(
        {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}
    )
    return SailPointReportTrigger(
        conn_id="sailpoint_default", job_id=job_id, deadline=time.time() + 60, poll_interval=0.1
    )


@pytest.mark.parametrize(
    ("task_state", "cancelled"),
    [("failed", True), ("success", True), (None, False), ("scheduled", False), ("deferred", False)],
    ids=["marked-failed", "marked-success", "cleared", "cleared-rescheduled", "reassigned"],
)
def test_on_kill_cancels_only_what_a_person_ended(
    sailpoint: RunningSimulator,
    monkeypatch: pytest.MonkeyPatch,
    task_state: str | None,
    cancelled: bool,
) -> None:
    trigger = never_finishing_trigger(sailpoint)

    async def state_now(self: Any) -> str | None:
        return task_state

    monkeypatch.setattr(SailPointReportTrigger, "task_state", state_now)
    asyncio.run(trigger.on_kill())
    assert bool(requests_seen(sailpoint, f"{trigger.job_id}/cancel")) is cancelled
    if not cancelled:
        SailPointHook().cancel_export(trigger.job_id)  # leave no running report behind


def test_a_second_run_of_a_running_report_follows_the_running_task(
    sailpoint: RunningSimulator,
) -> None:
    arm(sailpoint, kind="never_finish")
    hook = SailPointHook()
    request = {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": True}}
    first, second = hook.submit_export(request), hook.submit_export(request)
    hook.cancel_export(first)  # leave no running report behind
    assert second == first
    assert len(runs(sailpoint)) == 2


def test_retry_reuses_the_stored_task_without_a_second_run(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    first = export(context, s3)
    assert export(next_try(context), s3)["job_id"] == first["job_id"]
    assert len(runs(sailpoint)) == 1


def test_a_foreign_running_task_is_waited_out_never_cancelled_and_the_run_resubmitted(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """SailPoint returns the running task of the report *type*: another run's task with
    other arguments is not adopted (the simulator's default is that hostile reading)."""
    configure(sailpoint, latency=1.5)
    try:
        theirs = SailPointHook().submit_export(
            {"reportType": "IDENTITIES_DETAILS", "arguments": {"correlatedOnly": False}}
        )
        raw = export(context, s3)  # ours: correlatedOnly true
    finally:
        configure(sailpoint, latency=0.3)
    assert raw["job_id"] != theirs
    assert requests_seen(sailpoint, "/cancel") == []  # never cancelled by us
    assert len(runs(sailpoint)) == 3  # theirs, ours answered with theirs, ours again
    assert [job["job_id"] for job in raw["jobs"]] == [raw["job_id"]]


def test_a_refused_cancel_is_logged_with_the_reason_and_the_report_left(
    sailpoint: RunningSimulator,
    s3: LocalS3,
    context: dict[str, Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Cancel is declared for personal access tokens only: an API client's is refused."""
    configure(sailpoint, cancel_requires_pat=True)
    arm(sailpoint, kind="never_finish")
    try:
        op = operator(s3, wait_timeout=1)
        [event] = run_trigger(deferred_trigger(op, context))
    finally:
        configure(sailpoint, cancel_requires_pat=False)
    assert event["status"] == "timeout"
    assert event["cancelled"] is False
    assert "personal access tokens" in "".join(capfd.readouterr())
    with pytest.raises(ExportError, match="not done within wait_timeout"):
        op.execute_complete(context, event)
    [refused] = requests_seen(sailpoint, "/cancel")
    assert refused["status"] == 403
    SailPointHook().cancel_export(event["job_id"])  # a refused cancel does not raise either


def test_a_search_export_whose_csvs_differ_in_header_fails_naming_the_member(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    """Each index's CSV of a SEARCH_EXPORT zip may carry its own columns: landing them
    as one table would misalign rows, so the landing refuses and names the member (the
    original stays in the raw zone as it came)."""
    from compliance_exports.landing.errors import LandingError
    from compliance_exports.landing.land import LakeOptions, land_raw_object

    search = {"query": "*", "indices": ["identities", "roles"], "columns": "id,name"}
    configure(sailpoint, zip_member_headers="per_index")
    try:
        raw = export(
            context, s3, report_type="SEARCH_EXPORT", arguments=search, dataset="search_export"
        )
    finally:
        configure(sailpoint, zip_member_headers="same")
    with pytest.raises(LandingError, match=r"search_export\.zip:.*\.csv: header differs"):
        land_raw_object(raw, {}, lake=LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket))
    assert s3.keys("curated/") == []
    assert s3.read(raw["key"])[:2] == b"PK"


# --------------------------------------------------------------------------- no echo, hostile


@pytest.mark.parametrize("age", [30, 600])
def test_without_echoed_arguments_a_task_started_before_we_asked_is_waited_out(
    own_sailpoint: Callable[..., RunningSimulator],
    s3: LocalS3,
    context: dict[str, Any],
    age: int,
) -> None:
    """``attributes`` carries no argument (CHOICE echo_arguments=False): someone else's
    running task of our report type, started ``age`` s before we asked, is still told
    from ours by its start on the tenant's clock (the answer's Date). Before that check a
    task started less than CLOCK_SKEW (2 min) before was adopted and its file landed."""
    sim = own_sailpoint(
        echo_arguments=False, foreign_task_at_first_run=True, foreign_task_age=age, latency=1.0
    )
    raw = export(context, s3)
    exports = exports_of(sim)
    [theirs] = [tid for tid, task in exports.items() if task["launcher"] == FOREIGN_LAUNCHER]
    assert raw["job_id"] != theirs
    assert exports[raw["job_id"]]["arguments"] == IDENTITIES["arguments"]
    assert exports[raw["job_id"]]["launcher"] == sim.credentials["login"]
    assert exports[theirs]["status"] == "SUCCESS"  # waited out, never cancelled
    assert requests_seen(sim, "/cancel") == []
    assert len(runs(sim)) == 2  # answered with theirs, then ours
    assert [job["job_id"] for job in raw["jobs"]] == [raw["job_id"]]


def test_without_echoed_arguments_our_own_task_is_adopted(
    own_sailpoint: Callable[..., RunningSimulator], s3: LocalS3, context: dict[str, Any]
) -> None:
    sim = own_sailpoint(echo_arguments=False)
    raw = export(context, s3)
    assert len(runs(sim)) == 1
    assert exports_of(sim)[raw["job_id"]]["arguments"] == IDENTITIES["arguments"]
    # a second run of the same request while ours runs is answered with ours: adopted
    configure(sim, latency=30)
    hook = SailPointHook()
    first = hook.submit_export(raw["request"])
    assert hook.submit_export(raw["request"]) == first
    hook.cancel_export(first)


def test_every_default_registry_report_lands_against_the_hostile_tenant(
    own_sailpoint: Callable[..., RunningSimulator], s3: LocalS3, context: dict[str, Any]
) -> None:
    """The hostile profile's first run of each report type meets someone else's running
    task of that type (other arguments, none echoed, started 10 minutes earlier): every
    SailPoint export of the default registry waits it out, never cancels it, runs again
    and lands its own report."""
    sim = own_sailpoint(profile="hostile")
    entries = [e for e in load_registry().entries if e.vendor.name == "sailpoint"]
    assert len({e.params["report_type"] for e in entries}) == len(entries) >= 3
    for entry in entries:
        raw = export(context, s3, dataset=entry.dataset, **entry.params)
        exports = exports_of(sim)
        assert exports[raw["job_id"]]["launcher"] == sim.credentials["login"], entry.name
        assert exports[raw["job_id"]]["arguments"] == entry.params["arguments"], entry.name
        assert [job["job_id"] for job in raw["jobs"]] == [raw["job_id"]]
    launchers = [task["launcher"] for task in exports_of(sim).values()]
    assert launchers.count(FOREIGN_LAUNCHER) == len(entries)
    assert len(runs(sim)) == 2 * len(entries)
    assert requests_seen(sim, "/cancel") == []


# --------------------------------------------------------------------------- cancel outcomes

#: What the next try reads of a report cancelled at the deadline, per ``cancel_outcome``.
AFTER_CANCEL = {
    "terminated": "TERMINATED",
    "error": "FAILURE",
    "removed": "UNKNOWN",
    "runs_on": None,  # still running: followed again until its deadline
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("outcome", sorted(AFTER_CANCEL))
def test_a_report_cancelled_at_the_deadline_whatever_the_cancel_does(
    own_sailpoint: Callable[..., RunningSimulator],
    s3: LocalS3,
    context: dict[str, Any],
    outcome: str,
) -> None:
    """CHOICE cancel_outcome: the timed-out try fails as it would; the next try re-attaches
    and follows what the cancel left: a report ended TERMINATED or ERROR is run again, a
    vanished one is submitted anew, one that runs on is followed to the deadline again."""
    sim = own_sailpoint(cancel_outcome=outcome)
    arm(sim, kind="never_finish")
    op = operator(s3, wait_timeout=1)
    [event] = run_trigger(deferred_trigger(op, context))
    assert (event["status"], event["cancelled"]) == ("timeout", True)
    with pytest.raises(ExportError, match=r"not done within wait_timeout.*cancelled"):
        op.execute_complete(context, event)
    cancelled = event["job_id"]

    retry = next_try(context)
    if AFTER_CANCEL[outcome] is None:
        with pytest.raises(ExportError, match=r"not done within wait_timeout.*cancelled"):
            run_deferrable(operator(s3, wait_timeout=1), retry)
        assert exports_of(sim)[cancelled]["status"] == "RUNNING"
        assert len(runs(sim)) == 1
    else:
        raw = run_deferrable(operator(s3, wait_timeout=5), retry)
        assert raw["job_id"] != cancelled
        assert [(job["job_id"], job.get("ended")) for job in raw["jobs"]] == [
            (cancelled, AFTER_CANCEL[outcome]),
            (raw["job_id"], None),
        ]
        assert len(runs(sim)) == 2
    assert requests_seen(sim, f"{cancelled}/cancel")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("outcome", sorted(AFTER_CANCEL))
def test_a_report_cancelled_by_marking_the_task_failed_whatever_the_cancel_does(
    own_sailpoint: Callable[..., RunningSimulator],
    monkeypatch: pytest.MonkeyPatch,
    outcome: str,
) -> None:
    """on_kill after a person marked the task failed: the cancel returns at once whatever
    it does, and what the report then is reads as a phase the operator handles."""
    sim = own_sailpoint(cancel_outcome=outcome)
    trigger = never_finishing_trigger(sim)

    async def state_now(self: Any) -> str | None:
        return "failed"

    monkeypatch.setattr(SailPointReportTrigger, "task_state", state_now)
    started = time.monotonic()
    asyncio.run(trigger.on_kill())
    assert time.monotonic() - started < 10
    hook = SailPointHook()
    if outcome == "removed":
        with pytest.raises(ExportNotFoundError):
            hook.get_export_state(trigger.job_id)
        return
    phase = hook.get_export_state(trigger.job_id).phase
    expected = {
        "terminated": ExportPhase.CANCELLED,
        "error": ExportPhase.FAILED,
        "runs_on": ExportPhase.RUNNING,
    }
    assert phase is expected[outcome]
