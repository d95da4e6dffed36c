"""A manual run's trigger-form params behave as the form says (dag.test with run conf)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from compliance_exports.landing.layout import Partition

pytestmark = [pytest.mark.airflow, pytest.mark.integration]
DAG_ID = "oleria_exports"
DAY = dt.date(2026, 11, 20)
# dag.test() reuses the run of a logical date: each test runs its own day.
DRY_RUN_DAY, INVALID_DAYS = dt.date(2026, 11, 19), (dt.date(2026, 11, 18), dt.date(2026, 11, 17))


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
        "range_start": "2026-10-20",
        "range_end": "2026-10-22",
    }
    dagrun = run_for_day(dags[DAG_ID], DAY, conf)
    states = _states(dagrun)
    assert dagrun.state == "success", states
    days = ["2026-10-20", "2026-10-21", "2026-10-22"]
    for day in days:  # one partition per day of the range, each with its manifest
        part = Partition("oleria", "ilm_employee_events", dt.date.fromisoformat(day))
        manifest = json.loads(s3.read(part.manifest_key))
        assert manifest["data_interval"]["start"].startswith(day)
    assert not s3.keys("curated/vendor=oleria/dataset=ilm_employee_events/dt=2026-11-20/")
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
        (INVALID_DAYS[0], {"range_start": "2026-11-05", "range_end": "2026-11-01"},
         "is before range_start"),
        (INVALID_DAYS[1], {"range_start": "2026-11-05"}, "set both range_start and range_end"),
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
