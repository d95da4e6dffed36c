"""The trigger form in a real Chromium (issue 7): pick a range and a subset, trigger, it lands.

Locators are the ones verified on the Airflow 3.3.2 UI (shared VERIFIED_RECIPES.md). The
DAG starts paused: the dialog's "Unpause on trigger" (checked by default) unpauses it,
which also lets the scheduler start the latest nightly run; the assertions below only
look at this run's days, which no other run covers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from compliance_exports.registry import ExportEntry, ExportKind
from tests.e2e.helpers import (
    DagCase,
    E2EStack,
    data_day,
    days,
    launch_chromium,
    log_in,
    selected_cases,
)

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.integration]

RUN_TIMEOUT_S = 600


def _form_choice(case: DagCase) -> tuple[ExportEntry, list[dt.date]]:
    """The export to select and the range to set: a windowed export over two days when the
    DAG has one; otherwise a snapshot, over a range ending yesterday (a snapshot is taken
    for the range's last day, and only while that day is recent)."""
    if case.windowed:
        first = data_day(12)
        return case.windowed[0], list(days(first, first + dt.timedelta(days=1)))
    yesterday = data_day(1)
    return case.snapshots[0], list(days(yesterday - dt.timedelta(days=1), yesterday))


def _png_ok(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes"


def _trigger_in_browser(
    stack: E2EStack, dag_id: str, selected: str, first: dt.date, last: dt.date, shots: Path
) -> dict[str, Any]:
    """Log in, fill the trigger form, trigger; return the created run (the UI's POST reply)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            log_in(page, stack, f"/dags/{dag_id}")

            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            dialog.wait_for()
            # The form's sections are an accordion: one open at a time.
            dialog.get_by_role("button", name="What to export").click()
            combo = dialog.get_by_role("combobox", name="Select one or multiple values")
            chosen = dialog.locator('input[type="hidden"][name="element_exports"]')
            combo.click()
            for _ in range(20):  # every export is selected by default: clear them
                if chosen.count() == 0:
                    break
                combo.press("Backspace")
            page.get_by_role("option", name=selected, exact=True).click()
            values = [chosen.nth(i).get_attribute("value") for i in range(chosen.count())]
            assert values == [selected], f"the multi-select holds {values}"
            page.screenshot(path=str(shots / f"{dag_id}-exports.png"), full_page=True)

            dialog.get_by_role("button", name="Date range override").click()
            range_start = dialog.get_by_role("group").filter(has_text="Range start")
            range_start.get_by_role("textbox").fill(first.isoformat())
            range_end = dialog.get_by_role("group").filter(has_text="Range end")
            range_end.get_by_role("textbox").fill(last.isoformat())
            unpause = dialog.get_by_role("checkbox", name=f"Unpause {dag_id} on trigger")
            assert unpause.is_checked(), "a paused DAG's dialog unpauses on trigger by default"
            page.screenshot(path=str(shots / f"{dag_id}-range.png"), full_page=True)

            with page.expect_response(
                lambda r: (
                    r.url.endswith(f"/api/v2/dags/{dag_id}/dagRuns") and r.request.method == "POST"
                )
            ) as created:
                dialog.get_by_role("button", name="Trigger", exact=True).click()
            response = created.value
            assert response.ok, f"trigger failed: {response.status} {response.text()[:2000]}"
            run: dict[str, Any] = response.json()
            return run
        finally:
            browser.close()


@pytest.mark.parametrize("case", selected_cases(), ids=str)
def test_trigger_form_range_and_subset(case: DagCase, stack: E2EStack, artifacts: Path) -> None:
    entry, chosen_days = _form_choice(case)
    first, last = chosen_days[0], chosen_days[-1]
    # As a fresh deployment has it (another test may have unpaused it): the dialog's
    # "Unpause on trigger" is then part of what this test drives.
    stack.client.set_paused(case.dag_id, True)

    run = _trigger_in_browser(stack, case.dag_id, entry.name, first, last, artifacts)
    for shot in ("exports", "range"):
        _png_ok(artifacts / f"{case.dag_id}-{shot}.png")

    run_id = run["dag_run_id"]
    final = stack.client.wait_for_runs(case.dag_id, [run_id], timeout=RUN_TIMEOUT_S)[run_id]
    assert final["state"] == "success", stack.client.describe_runs(case.dag_id, [run_id])
    conf = stack.client.run(case.dag_id, run_id)["conf"]
    assert conf["exports"] == [entry.name]
    assert (conf["range_start"], conf["range_end"]) == (first.isoformat(), last.isoformat())

    # The selected export: a windowed one lands each day of the range, a snapshot the last.
    landed = chosen_days if entry.kind is ExportKind.WINDOWED else [last]
    for day in landed:
        manifest, _ = stack.check_partition(entry, day)
        assert manifest["data_interval"]["start"].startswith(day.isoformat())
    for day in set(chosen_days) - set(landed):
        assert stack.partition_keys(entry, day) == [], f"{entry.name} dt={day} was written"

    # The others were not selected: skipped in this run, nothing written for these days
    # (except a day another run of this DAG covers, e.g. the nightly run the unpause starts).
    states = stack.client.task_states(case.dag_id, run_id)
    others = [e for e in case.entries if e.name != entry.name]
    covered = _days_of_other_runs(stack, case.dag_id, run_id)
    for other in others:
        mine = {t: s for t, s in states.items() if t.startswith(f"{other.name}.")}
        assert mine, f"no task instances for {other.name}"
        assert set(mine.values()) == {"skipped"}, mine
        for day in set(chosen_days) - covered:
            assert stack.partition_keys(other, day) == [], f"{other.name} dt={day} was written"


def _days_of_other_runs(stack: E2EStack, dag_id: str, run_id: str) -> set[dt.date]:
    found: set[dt.date] = set()
    for run in stack.client.runs(dag_id):
        if run["dag_run_id"] == run_id or not run.get("data_interval_start"):
            continue
        start = dt.datetime.fromisoformat(run["data_interval_start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00"))
        found.update(days(start.date(), max(start, end - dt.timedelta(microseconds=1)).date()))
    return found
