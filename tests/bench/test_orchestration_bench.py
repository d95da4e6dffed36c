"""Smoke test of the orchestration benchmark's pure parts: no stack is started."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bench.orchestration import (
    EXPORTS,
    SCENARIOS,
    TaskCost,
    clock_env,
    compare,
    data_days,
    log_paths,
    overall,
    process_runs,
    read_log,
    summarize_run,
    table,
    targets,
    worker_seconds,
)


def line(second: float, event: str) -> dict[str, Any]:
    moment = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=second)
    return {"timestamp": moment.isoformat().replace("+00:00", "Z"), "event": event}


#: a deferred task's try as Airflow 3.3 logs it: run, defer, 30 s in the triggerer, resume
DEFERRED_TRY = [
    line(0.0, "::group::Pre Execute"),
    line(1.5, "Worker startup parse complete"),
    line(2.0, "export submitted: deferring"),
    line(2.1, "Pausing task as DEFERRED. "),
    line(2.2, "::endgroup::"),
    line(32.2, "::group::Pre Execute"),  # resumed: a new task process
    line(33.0, "Worker startup parse complete"),
    line(35.7, "Pushing xcom"),
]


def test_a_deferred_try_counts_only_its_two_process_runs() -> None:
    runs = process_runs(DEFERRED_TRY)
    assert [round(r.seconds, 3) for r in runs] == [2.2, 3.5]
    assert [r.deferred for r in runs] == [True, False]
    assert worker_seconds([DEFERRED_TRY]) == 5.7  # not the 35.7 s from first to last line


def test_tries_add_up_and_lines_before_the_first_start_belong_to_it() -> None:
    first_try = [line(0.0, "a warning"), line(0.5, "::group::Pre Execute"), line(4.0, "failed")]
    second_try = [line(100.0, "::group::Pre Execute"), line(101.0, "done")]
    assert len(process_runs(first_try)) == 1
    assert worker_seconds([first_try, second_try]) == 5.0
    assert worker_seconds([]) == 0.0


def test_log_files_are_read_per_try(tmp_path: Path) -> None:
    ti = {"dag_id": "d", "dag_run_id": "manual__x", "task_id": "e.export", "map_index": 3,
          "try_number": 2}  # fmt: skip
    paths = log_paths(tmp_path, ti)
    assert [p.name for p in paths] == ["attempt=1.log", "attempt=2.log"]
    folder = "logs/dag_id=d/run_id=manual__x/task_id=e.export/map_index=3"
    assert paths[0].parent == tmp_path / folder
    assert log_paths(tmp_path, {**ti, "map_index": -1})[0].parent.name == "task_id=e.export"
    paths[0].parent.mkdir(parents=True)
    paths[0].write_text("\n".join(json.dumps(r) for r in DEFERRED_TRY) + "\nnot json\n")
    assert read_log(paths[0]) == DEFERRED_TRY


def cost(key: str, worker: float, api: float, runs: int = 1) -> TaskCost:
    task = key.split(".", 1)[1].split("[")[0]
    return TaskCost(key, task, "success", 1, runs, runs - 1, worker, api, 0)


def side(tasks: list[str], worker: float, wall: float) -> dict[str, Any]:
    """A side with ``tasks`` per slice over 2 slices for each export."""
    run = {"start_date": "2026-12-01T10:00:00Z", "state": "success",
           "end_date": f"2026-12-01T10:00:{wall:02.0f}Z"}  # fmt: skip
    exports = {}
    for name, (export, _) in SCENARIOS.items():
        costs = [cost(f"{export}.plan", 1.0, 1.1), cost("other.plan", 9.0, 9.0)]
        costs += [cost(f"{export}.{t}[{i}]", worker, worker + 0.1) for t in tasks for i in (0, 1)]
        exports[name] = summarize_run(export, 2, run, costs)
    return {"exports": exports, "overall": overall({n: exports[n] for n in EXPORTS})}


def test_per_slice_numbers_ratios_targets_and_the_table() -> None:
    before = side(["submit", "wait", "fetch", "land"], worker=2.0, wall=40)
    after = side(["export", "land"], worker=2.0, wall=20)
    oleria = before["exports"]["oleria_employee_events"]
    assert oleria["tis_per_slice"] == 4.0  # plan excluded ...
    assert oleria["tis_per_slice_with_plan"] == 4.5
    assert oleria["worker_s_per_slice"] == 8.5  # ... but its worker time counted
    assert oleria["other_groups_worker_s"] == 9.0  # other groups apart
    assert oleria["check_vs_api"]["median_s"] == 0.1
    assert oleria["by_task"]["wait"] == {"tis": 2, "worker_s": 4.0, "deferrals": 0}
    assert before["overall"]["wall_s"] == 80.0
    ratios = compare(before, after)
    assert ratios["overall"] == {"wall_s": 0.5, "tis_per_slice": 0.5,
                                 "worker_s_per_slice": round(4.5 / 8.5, 3)}  # fmt: skip
    met = targets(before, after)
    assert met["tis_per_job_slice"]["met"] is True
    assert met["worker_slot_s_per_slice"]["met"] is False  # 0.529 > 0.5
    assert set(met["worker_slot_s_per_slice"]["per_export"]) == set(SCENARIOS)
    printed = table({"before": before, "after": after, "ratios": ratios, "targets": met})
    assert "worker-slot s / slice" in printed
    assert "oleria_employee_events@10s" in printed  # the slow-job scenario has its rows
    assert "overall" in printed
    assert "NOT met" in printed


def test_both_codes_get_the_same_clock_and_days_inside_the_data() -> None:
    env = clock_env(dt.date(2026, 12, 4))
    assert env == {"SIM_TODAY": "2026-12-04", "SIM_DATA_ANCHOR": "2026-12-05T00:00:00+00:00"}
    first, last = data_days(dt.date(2026, 12, 4), 14)
    assert (last - first).days == 13
    assert last == dt.date(2026, 12, 2)
