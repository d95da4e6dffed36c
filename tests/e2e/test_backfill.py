"""`airflow backfill create` against the local stack (issue 7), then a reprocess of it.

Three past days run through the real scheduler and triggerer: the windowed export lands
one partition per interval; snapshot exports skip (a backfill never labels today's state
as history); ``--reprocess-behavior completed`` lands the same rows again, replacing the
manifests and leaving no stale part behind. The reprocessed runs are Clears: their export
tasks re-attach to the vendor jobs they already followed (no new job); a reprocess with
``{"fresh_export": true}`` in its run conf submits a new job for every slice instead.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from compliance_exports.core.vendor import JobExportVendor
from include.localstack.client import StackWaitError, wait_until
from tests.e2e.helpers import DagCase, E2EStack, data_day, days, rows_of, selected_cases

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.timeout(1500)]

BACKFILL_TIMEOUT_S = 600
CREATE_ATTEMPTS = 5


def create_backfill(
    stack: E2EStack, dag_id: str, first: dt.date, last: dt.date, *extra: str
) -> dict[str, Any]:
    """``airflow backfill create`` with the stack's environment; return the new backfill.

    The DAG is paused while the runs are created, then unpaused. On SQLite the command can
    lose a write race against the scheduler ("database is locked"). Airflow 3.3.2 commits
    the backfill row, and the runs it has made or cleared so far, before the lock is lost
    (it cleans up only after a PostgreSQL or MySQL lock error), so the lost race leaves a
    partial backfill that refuses the next create ("Another backfill is running") until
    it is done. As docs/OPERATIONS.md tells a user to, the DAG is unpaused until the
    scheduler has finished that backfill (it runs what was made, or retires an empty one
    after two minutes), and the command is run again.
    """
    before = {b["id"] for b in stack.client.backfills(dag_id)}
    args = ["backfill", "create", "--dag-id", dag_id]
    args += ["--from-date", first.isoformat(), "--to-date", last.isoformat(), *extra]
    for _ in range(CREATE_ATTEMPTS):
        stack.client.set_paused(dag_id, True)
        try:
            result = stack.airflow(*args)
        finally:
            stack.client.set_paused(dag_id, False)
        if result.returncode == 0 or "database is locked" not in result.stderr:
            break
        for partial in stack.client.backfills(dag_id):
            if partial["id"] not in before:
                wait_for_backfill(stack, dag_id, partial["id"])
                before.add(partial["id"])
    assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stderr[-4000:]}"
    created = [b for b in stack.client.backfills(dag_id) if b["id"] not in before]
    assert len(created) == 1, f"expected one new backfill, got {created}"
    return created[0]


def wait_for_backfill(stack: E2EStack, dag_id: str, backfill_id: int) -> list[dict[str, Any]]:
    """Wait until the scheduler marks the backfill completed; return its runs."""

    def probe() -> dict[str, Any] | None:
        backfill: dict[str, Any] = stack.client.get(f"/api/v2/backfills/{backfill_id}")
        return backfill if backfill.get("completed_at") else None

    runs = stack.client.runs(dag_id, run_type="backfill")
    try:
        wait_until(
            f"backfill {backfill_id} of {dag_id}", probe, timeout=BACKFILL_TIMEOUT_S, every=3
        )
    except StackWaitError as exc:
        detail = stack.client.describe_runs(dag_id, [r["dag_run_id"] for r in runs])
        raise StackWaitError(f"{exc}\n{detail}") from None
    return stack.client.runs(dag_id, run_type="backfill")


def run_days(runs: list[dict[str, Any]]) -> dict[dt.date, dict[str, Any]]:
    """Backfill runs by the day their data interval covers."""
    by_day = {}
    for run in runs:
        start = dt.datetime.fromisoformat(run["data_interval_start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00"))
        assert end - start == dt.timedelta(days=1), run
        by_day[start.date()] = run
    return by_day


def check_runs(
    stack: E2EStack, case: DagCase, runs: list[dict[str, Any]], wanted: list[dt.date]
) -> None:
    by_day = run_days(runs)
    assert sorted(by_day) == wanted, f"backfill runs cover {sorted(by_day)}"
    ids = [by_day[d]["dag_run_id"] for d in wanted]
    bad = [r for r in ids if stack.client.run(case.dag_id, r)["state"] != "success"]
    assert not bad, stack.client.describe_runs(case.dag_id, ids)
    for run_id in ids:
        states = stack.client.task_states(case.dag_id, run_id)
        for entry in case.windowed:
            mine = {t: s for t, s in states.items() if t.startswith(f"{entry.name}.")}
            assert set(mine.values()) == {"success"}, (run_id, mine)
        for entry in case.snapshots:
            mine = {t: s for t, s in states.items() if t.startswith(f"{entry.name}.")}
            assert mine, f"{run_id}: no task instances for {entry.name}"
            assert set(mine.values()) == {"skipped"}, (run_id, mine)


def check_lake(
    stack: E2EStack, case: DagCase, wanted: list[dt.date]
) -> dict[tuple[str, dt.date], tuple[dict[str, Any], list[str]]]:
    """One correct partition per interval (windowed), nothing for snapshots."""
    landed = {}
    for entry in case.windowed:
        for day in wanted:
            manifest, table = stack.check_partition(entry, day)
            assert manifest["data_interval"]["start"].startswith(day.isoformat()), manifest
            assert manifest["data_interval"]["end"].startswith(
                (day + dt.timedelta(days=1)).isoformat()
            ), manifest
            rows = rows_of(table)
            ids = (
                table.column("id").to_pylist()
                if table is not None and "id" in table.column_names
                else rows
            )
            assert len(ids) == len(set(ids)), f"{entry.name} dt={day} has duplicate rows"
            landed[(entry.name, day)] = (manifest, rows)
    for entry in case.snapshots:
        for day in wanted:
            assert stack.partition_keys(entry, day) == [], f"snapshot {entry.name} dt={day} written"
    return landed


def job_submissions(stack: E2EStack, vendor: str) -> int:
    """How many requests that create a job ``vendor``'s simulator has answered so far."""
    base = stack.info["simulators"][vendor]["base_url"]
    log = httpx.get(f"{base}/_sim/requests", timeout=10).raise_for_status().json()
    return sum(1 for r in log if r["method"] == "POST" and "token" not in r["path"])


def job_ids(landed: dict[Any, tuple[dict[str, Any], list[str]]]) -> dict[Any, Any]:
    return {key: manifest["job_id"] for key, (manifest, _) in landed.items()}


@pytest.mark.parametrize("case", selected_cases(), ids=str)
def test_backfill_then_reprocess(case: DagCase, stack: E2EStack) -> None:
    # Three past days (5..3 days back), inside the simulators' generated history.
    first, last = data_day(5), data_day(3)
    wanted = list(days(first, last))

    backfill = create_backfill(stack, case.dag_id, first, last)
    runs = wait_for_backfill(stack, case.dag_id, backfill["id"])
    check_runs(stack, case, runs, wanted)
    landed = check_lake(stack, case, wanted)
    if not case.windowed:
        return  # only snapshots: every run skipped them and nothing was written

    again = create_backfill(stack, case.dag_id, first, last, "--reprocess-behavior", "completed")
    runs = wait_for_backfill(stack, case.dag_id, again["id"])
    check_runs(stack, case, runs, wanted)
    relanded = check_lake(stack, case, wanted)

    for key, (manifest, rows) in landed.items():
        new_manifest, new_rows = relanded[key]
        assert new_manifest["run_token"] != manifest["run_token"], f"{key}: manifest not replaced"
        assert new_manifest["rows"] == manifest["rows"], key
        assert new_rows == rows, f"{key}: the reprocess landed different rows"

    job_vendors = sorted(
        {e.vendor.name for e in case.windowed if isinstance(e.vendor, JobExportVendor)}
    )
    if not job_vendors:
        return  # a synchronous vendor (Maxsight): no job to re-attach to
    # the reprocess re-attached to the jobs of the first backfill: the same jobs, no new one
    assert job_ids(relanded) == job_ids(landed)
    submitted = {vendor: job_submissions(stack, vendor) for vendor in job_vendors}

    fresh = create_backfill(
        stack, case.dag_id, first, last, "--reprocess-behavior", "completed",
        "--dag-run-conf", json.dumps({"fresh_export": True}),
    )  # fmt: skip
    runs = wait_for_backfill(stack, case.dag_id, fresh["id"])
    check_runs(stack, case, runs, wanted)
    exported = check_lake(stack, case, wanted)
    for vendor in job_vendors:  # (more if a lost SQLite race had a partial backfill run)
        slices = sum(len(wanted) for e in case.windowed if e.vendor.name == vendor)
        assert job_submissions(stack, vendor) >= submitted[vendor] + slices, vendor
    for key, (manifest, rows) in exported.items():
        assert manifest["job_id"] != landed[key][0]["job_id"], f"{key}: no fresh job"
        assert rows == landed[key][1], f"{key}: the fresh export landed different rows"
