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
