"""Data-quality gates through real Airflow (dag.test()) and the local S3 server.

The shipped Oleria windowed export, its schema changed as if the vendor had renamed a
column (``owner`` declared as ``owner_name``: the file lacks a declared column and has
an undeclared one). With ``missing_columns: fail`` the land task fails and the previous
version stays live; with ``warn`` the day is published and the manifest says why.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.landing.layout import new_token
from compliance_exports.landing.manifest import manifest_problems
from compliance_exports.registry import DEFAULT_REGISTRY, REGISTRY_ENV, load_registry
from include.simulators.clock import days_ago
from tests.conftest import REPO, LocalS3

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

DAY = days_ago(4)
OLERIA = "oleria_employee_events"


def registry_document(quality: dict[str, Any], renamed: bool) -> dict[str, Any]:
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    defaults = {**shipped["defaults"], "retry_delay": "1s", "poll_interval": "1s"}
    defaults.update(retries=2, verify=False, quality=quality)
    entry = copy.deepcopy(shipped["exports"][OLERIA])
    if renamed:
        schema = entry["schema"]
        entry["schema"] = {("owner_name" if k == "owner" else k): v for k, v in schema.items()}
    return {"defaults": defaults, "exports": {OLERIA: entry}}


def load_dag(folder: Path, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    path = folder / f"exports-{new_token()}.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    bag = DagBag(dag_folder=str(REPO / "dags" / "compliance_exports.py"))
    assert bag.import_errors == {}
    return bag.dags["oleria_exports"]


def run(dag: Any, run_for_day: Any) -> dict[str, Any]:
    dagrun = run_for_day(dag, DAY)
    states: dict[str, Any] = {
        ti.task_id.rsplit(".", 1)[-1]: ti.state for ti in dagrun.get_task_instances()
    }
    states["run"] = dagrun.state
    return states


def live(s3: LocalS3) -> dict[str, Any]:
    key = load_registry().get(OLERIA).partition(DAY).manifest_key
    manifest: dict[str, Any] = json.loads(s3.read(key))
    assert manifest_problems(manifest) == []
    return manifest


def by_check(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["check"]: result for result in manifest["quality"]}


def test_a_renamed_column_fails_the_gate_or_warns(
    tmp_path: Path,
    airflow_db: Path,
    s3: LocalS3,
    sim: Any,
    run_for_day: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strict = {"missing_columns": "fail", "new_columns": "warn"}
    good = load_dag(tmp_path, monkeypatch, registry_document(strict, renamed=False))
    states = run(good, run_for_day)
    assert (states["run"], states["land"]) == ("success", "success")
    first = live(s3)
    checks = by_check(first)
    assert checks["missing_columns"]["status"] == "pass"
    assert checks["new_columns"]["status"] == "pass"
    assert checks["vendor_rows"]["status"] == "skipped"  # Oleria reports no row count
    assert first["rows"] > 0
    partition = load_registry().get(OLERIA).partition(DAY)
    kept = s3.keys(partition.versions_prefix)

    # the vendor renamed owner (declared as owner_name): missing_columns: fail
    renamed = load_dag(tmp_path, monkeypatch, registry_document(strict, renamed=True))
    states = run(renamed, run_for_day)
    assert (states["run"], states["land"]) == ("failed", "failed")
    assert live(s3) == first, "the previous version stays live, unchanged"
    assert s3.keys(partition.versions_prefix) == kept
    assert not [k for k in s3.keys("_staging/") if "dataset=ilm_employee_events" in k]

    # the same file with missing_columns: warn is published, and says so
    lenient = {"missing_columns": "warn", "new_columns": "warn"}
    renamed = load_dag(tmp_path, monkeypatch, registry_document(lenient, renamed=True))
    dagrun = run_for_day(renamed, DAY)
    assert dagrun.state == "success"
    second = live(s3)
    assert second["supersedes"] == first["version"]
    checks = by_check(second)
    assert checks["missing_columns"] == {
        "check": "missing_columns",
        "status": "warn",
        "detail": "declared column(s) not in the file: owner_name",
    }
    assert checks["new_columns"] == {
        "check": "new_columns",
        "status": "warn",
        "detail": "undeclared column(s) in the file (landed as text): owner",
    }
    assert second["drift"] == {"added": ["owner"], "missing": ["owner_name"]}
    (land,) = [ti for ti in dagrun.get_task_instances() if ti.task_id.endswith(".land")]
    returned = land.xcom_pull(task_ids=land.task_id, map_indexes=land.map_index)
    assert returned["warnings"] == [
        "missing_columns: declared column(s) not in the file: owner_name",
        "new_columns: undeclared column(s) in the file (landed as text): owner",
    ]
