"""Every DAG file imports cleanly, offline, and follows the house rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}


def test_one_dag_per_registry_dag(dagbag) -> None:  # type: ignore[no-untyped-def]
    from compliance_exports.registry import load_registry

    assert set(dagbag.dag_ids) == set(load_registry().by_dag())


def test_every_dag_has_tags_retries_and_timeouts(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag in dagbag.dags.values():
        assert dag.tags, dag.dag_id
        assert dag.max_active_runs >= 1
        for t in dag.tasks:
            if t.task_id.endswith(".plan"):
                continue  # planning is deterministic: a retry cannot change its answer
            assert t.retries >= 2, t.task_id
            assert t.execution_timeout is not None, t.task_id


def test_nightly_schedule_has_a_real_data_interval(dagbag) -> None:  # type: ignore[no-untyped-def]
    from airflow.timetables.interval import CronDataIntervalTimetable

    for dag in dagbag.dags.values():
        assert isinstance(dag.timetable, CronDataIntervalTimetable), dag.dag_id


def test_dag_files_import_without_network_or_heavy_modules() -> None:
    """Importing the DAG file opens no socket and loads no pyarrow, pandas or duckdb.

    (Not on the list: httpx, which ``airflow.sdk`` itself imports, and boto3, which
    Airflow loads to normalise any ``s3://`` Asset URI through the amazon provider.)
    """
    code = """
import socket, sys
def refuse(*a, **k):
    raise RuntimeError("network used at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
import runpy
runpy.run_path(sys.argv[1])
heavy = sorted({"pyarrow", "pandas", "duckdb", "openpyxl", "reportlab"} & set(sys.modules))
print("HEAVY", heavy)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "compliance_exports.py")],
        capture_output=True, text=True, env=env, check=True, cwd=REPO,
    )  # fmt: skip
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_the_fresh_export_switch_reaches_every_export_task() -> None:
    """The trigger form's ``fresh_export`` goes into each planned slice, and from there
    into the export task's kwargs (where the ledger honours it once per Clear)."""
    import datetime as dt

    from compliance_exports.core.vendor import job_export_kwargs
    from compliance_exports.dag_factory import plan_items
    from compliance_exports.registry import load_registry

    entry = load_registry().get("oleria_employee_events")
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    context = {"data_interval_start": start, "data_interval_end": start + dt.timedelta(days=1)}
    for fresh in (False, True):
        [planned] = plan_items(entry, [entry.name], {**context, "params": {"fresh_export": fresh}})
        assert planned["fresh_export"] is fresh
        assert job_export_kwargs(planned)["fresh_export"] is fresh
        assert job_export_kwargs(planned)["day"] == "2026-11-20"


def test_a_vendor_whose_hook_names_another_vendor_is_refused_when_the_dag_is_built() -> None:
    """The spec's name and the hook's vendor both name S3 partitions: they must agree."""
    import dataclasses

    import pytest

    from compliance_exports.core.vendor import UnknownVendorError
    from compliance_exports.dag_factory import build_dag
    from compliance_exports.registry import load_registry
    from compliance_exports.vendors.oleria.spec import OleriaVendor

    class Renamed(OleriaVendor):
        name = "renamed"

    entry = dataclasses.replace(load_registry().get("oleria_identities"), vendor=Renamed())
    with pytest.raises(UnknownVendorError, match="its operator's hook says 'oleria'"):
        build_dag("renamed_exports", [entry])
