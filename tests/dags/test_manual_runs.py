"""A manual run's trigger-form params behave as the form says (dag.test with run conf)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from compliance_exports.landing.layout import Partition
from include.simulators.clock import days_ago

pytestmark = [pytest.mark.airflow, pytest.mark.integration]
DAG_ID = "oleria_exports"
DAY = days_ago(1)
# dag.test() reuses the run of a logical date: each test runs its own day.
DRY_RUN_DAY, INVALID_DAYS = days_ago(2), (days_ago(3), days_ago(4))
# a range override six weeks back, inside the simulators' generated history
RANGE = [days_ago(44), days_ago(43), days_ago(42)]


def _posts(sim: Any) -> list[dict[str, Any]]:
    with sim.admin() as admin:
        log = admin.get("/_sim/requests").json()
    return [r for r in log if r["method"] == "POST" and r["path"].endswith("/downloads")]


def _states(dagrun: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dagrun.get_task_instances()}


def test_range_override_and_subset(
    dags: dict[str, Any], s3: Any, sim: Any, run_for_day: Any
) -> None:
    conf = {
        "exports": ["oleria_employee_events"],
        "range_start": RANGE[0].isoformat(),
        "range_end": RANGE[-1].isoformat(),
    }
    dagrun = run_for_day(dags[DAG_ID], DAY, conf)
    states = _states(dagrun)
    assert dagrun.state == "success", states
    for day in RANGE:  # one partition per day of the range, each with its manifest
        part = Partition("oleria", "ilm_employee_events", day)
        manifest = json.loads(s3.read(part.manifest_key))
        assert manifest["data_interval"]["start"].startswith(day.isoformat())
    assert not s3.keys(f"curated/vendor=oleria/dataset=ilm_employee_events/dt={DAY}/")
    # the snapshot export was not selected: skipped, nothing landed, nothing submitted
    assert states["oleria_identities.plan[-1]"] == "skipped"
    assert not s3.keys("curated/vendor=oleria/dataset=access_inventory_identities/")
    contexts = [json.loads(p["body"])["context"] for p in _posts(sim["oleria"])]
    assert contexts == ["ilmEmployeeEvents"] * 3


def test_dry_run_submits_nothing(dags: dict[str, Any], s3: Any, sim: Any, run_for_day: Any) -> None:
    dagrun = run_for_day(dags[DAG_ID], DRY_RUN_DAY, {"dry_run": True})
    states = _states(dagrun)
    assert dagrun.state == "success", states
    assert {
        states[f"{name}.plan[-1]"] for name in ("oleria_identities", "oleria_employee_events")
    } == {"skipped"}
    assert _posts(sim["oleria"]) == []
    assert s3.keys() == []


@pytest.mark.parametrize(
    ("day", "conf", "message"),
    [
        (INVALID_DAYS[0], {"range_start": str(days_ago(30)), "range_end": str(days_ago(34))},
         "is before range_start"),
        (INVALID_DAYS[1], {"range_start": str(days_ago(30))}, "set both range_start and range_end"),
    ],
)  # fmt: skip
def test_invalid_params_fail_before_any_request(
    day: dt.date,
    conf: dict[str, Any],
    message: str,
    dags: dict[str, Any],
    s3: Any,
    sim: Any,
    run_for_day: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dagrun = run_for_day(dags[DAG_ID], day, conf)
    states = _states(dagrun)
    output = "".join(capfd.readouterr())
    assert "invalid trigger parameters: params.range_" in output
    assert message in output
    assert dagrun.state == "failed"
    assert states["oleria_identities.plan[-1]"] == "failed"
    assert _posts(sim["oleria"]) == []
    assert s3.keys() == []


# --- the dry run's preflight: what would be exported, and whether the credentials work ---

PREFLIGHT_DAY = days_ago(1)  # snapshots plan only for a recent interval
WRONG_SECRET_DAY = days_ago(10)
WRONG_SECRET = "wr0ng-dry-run-s3cret-5e1d"


def _exports_at(sim: Any) -> dict[str, Any]:
    with sim.admin() as admin:
        return dict(admin.get("/_sim/facts").json().get("exports") or {})


def _plan_reports(dagrun: Any) -> dict[str, dict[str, Any]]:
    """The ``dry_run`` XCom of every ``plan`` task of the run, by export."""
    reports = {}
    for ti in dagrun.get_task_instances():
        if ti.task_id.endswith(".plan"):
            report = ti.xcom_pull(task_ids=ti.task_id, key="dry_run")
            if report is not None:
                reports[ti.task_id.removesuffix(".plan")] = report
    return reports


@pytest.mark.parametrize("vendor", ["oleria", "veza", "sailpoint", "maxsight"])
def test_dry_run_reports_each_export_and_its_credentials_and_starts_nothing(
    vendor: str, dags: dict[str, Any], s3: Any, sim: Any, run_for_day: Any
) -> None:
    from compliance_exports.registry import load_registry

    dag_id = f"{vendor}_exports"
    names = [e.name for e in load_registry().by_dag()[dag_id]]
    before = _exports_at(sim[vendor])

    dagrun = run_for_day(dags[dag_id], PREFLIGHT_DAY, {"dry_run": True})

    states = _states(dagrun)
    assert dagrun.state == "success", states
    assert {states[f"{name}.plan[-1]"] for name in names} == {"skipped"}
    reports = _plan_reports(dagrun)
    assert sorted(reports) == sorted(names)  # one report per selected export
    for name, report in reports.items():
        assert report["export"] == name
        assert report["days"] == [PREFLIGHT_DAY.isoformat()]  # what would be exported
        assert [r["day"] for r in report["requests"]] == report["days"]
        assert report["refused"] == []
        assert report["connection"] == f"{vendor}_default"
        assert report["credentials_ok"] is True, report["credentials"]
        assert "accepted the credentials" in report["credentials"]
    # the probes read; nothing was submitted, no job exists, nothing landed
    with sim[vendor].admin() as admin:
        seen = admin.get("/_sim/requests").json()
    assert {r["method"] for r in seen if "token" not in r["path"]} == {"GET"}, seen
    after = _exports_at(sim[vendor])
    if vendor == "maxsight":  # no jobs: each probe is an empty one-instant export
        new = [after[key] for key in set(after) - set(before)]
        assert len(new) == len(names)
        assert {record["rows"] for record in new} == {0}
    else:
        assert after == before
    assert s3.keys() == []


def test_dry_run_with_a_wrong_secret_fails_naming_the_export_and_the_vendors_message(
    dags: dict[str, Any],
    s3: Any,
    sim: Any,
    run_for_day: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The point of a dry run is to learn what would go wrong before a real run: a
    secret the vendor refuses fails the plan (no retry), naming the export, the
    connection and the vendor's own message, never the secret."""
    conn = {**sim["oleria"].connection(), "password": WRONG_SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_OLERIA_DEFAULT", json.dumps(conn))
    conf = {"dry_run": True, "exports": ["oleria_employee_events"]}

    dagrun = run_for_day(dags[DAG_ID], WRONG_SECRET_DAY, conf)

    states = _states(dagrun)
    output = "".join(capfd.readouterr())
    assert dagrun.state == "failed"
    assert states["oleria_employee_events.plan[-1]"] == "failed"
    assert (
        "dry run of oleria_employee_events: the run would fail: connection 'oleria_default': "
        "test failed: Oleria refused the credentials: token endpoint answered 401: "
        "invalid_client: invalid client credentials"
    ) in output
    assert WRONG_SECRET not in output
    report = _plan_reports(dagrun)["oleria_employee_events"]
    assert report["credentials_ok"] is False
    assert report["days"] == [WRONG_SECRET_DAY.isoformat()]  # still says what it would do
    assert _posts(sim["oleria"]) == []
    assert s3.keys() == []
