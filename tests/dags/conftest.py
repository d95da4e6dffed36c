"""Fixtures for running the registry's DAGs with dag.test() against simulators and S3."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.registry import DEFAULT_REGISTRY


def form_defaults(dag_id: str) -> dict[str, Any]:
    """Every trigger-form field at its default, as the UI submits a form."""
    from compliance_exports.dag_factory import trigger_form
    from compliance_exports.registry import load_registry

    entries = load_registry().by_dag()[dag_id]
    return {name: param.value for name, param in trigger_form(entries).items()}


def _run_for_day(dag: Any, day: dt.date, conf: dict[str, Any] | None = None) -> Any:
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    # dag.test() keeps run_conf values in the in-process DAG object's params, so every
    # run sends the whole form (as the UI does): one test's values never leak into the next.
    return dag.test(logical_date=logical, run_conf={**form_defaults(dag.dag_id), **(conf or {})})


@pytest.fixture(scope="session")
def run_for_day() -> Any:
    """``run_for_day(dag, day, conf=None)``: dag.test() of the interval ``[day, day + 1)``."""
    return _run_for_day


@pytest.fixture(scope="session")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    doc["defaults"]["retry_delay"] = "1s"
    path = tmp_path_factory.mktemp("registry") / "exports.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="session")
def dags(registry_file: Path, airflow_db: Path, s3_server: Any, simulators: Any) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    mp = pytest.MonkeyPatch()
    mp.setenv("COMPLIANCE_EXPORTS_REGISTRY", str(registry_file))
    try:
        bag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags"))
    finally:
        mp.undo()
    assert bag.import_errors == {}
    return dict(bag.dags)
