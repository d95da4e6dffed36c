"""Every DAG of the default registry, run with dag.test() against the simulators and S3.

The registry is the shipped one, with only the retry delay shortened so a failure shows
up in seconds instead of after minutes of back-off. Each run must succeed, and what it
published must be exactly what the simulator says it exported: readable Parquet with
the simulator's row count, and a valid manifest pointing at the raw original.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from compliance_exports.registry import ExportEntry, load_registry
from include.simulators.clock import days_ago

DAY = days_ago(1)  # last night's interval: snapshots are taken only for a recent one
pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def _exports(sim: Any) -> dict[str, Any]:
    with sim.admin() as admin:
        facts = admin.get("/_sim/facts").json()
    return dict(facts.get("exports", {}))


def _check_partition(s3: Any, entry: ExportEntry, sim: Any) -> dict[str, Any]:
    partition = entry.partition(DAY)
    manifest = json.loads(s3.read(partition.manifest_key))
    assert manifest["vendor"] == entry.vendor.name
    assert manifest["dataset"] == entry.dataset
    assert manifest["day"] == DAY.isoformat()
    assert manifest["raw"]["key"].startswith(partition.raw_prefix)
    assert manifest["raw"]["key"] in s3.keys(partition.raw_prefix)
    rows = 0
    for part in manifest["parts"]:
        table = pq.read_table(io.BytesIO(s3.read(part["key"])))
        assert table.num_rows == part["rows"]
        rows += table.num_rows
    assert rows == manifest["rows"]
    published = {k for k in s3.keys(partition.curated_prefix) if k.endswith(".parquet")}
    assert published == {p["key"] for p in manifest["parts"]}, "stale or unlisted parts"
    job = manifest["job_id"]
    if job is not None:  # Maxsight is synchronous: no job, the counts are checked elsewhere
        assert manifest["rows"] == _exports(sim)[job]["rows"], "rows differ from the simulator's"
        assert manifest["jobs"][-1]["job_id"] == job, "the manifest tells the job's story"
    return manifest


@pytest.fixture(params=["default", "hostile"])
def vendor_sims(
    request: pytest.FixtureRequest, simulators: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The simulators of a profile, the vendor connections pointing at them for the test."""
    if request.param == "default":
        return simulators
    hostile = request.getfixturevalue("hostile_simulators")
    for vendor, sim in hostile.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT", json.dumps(sim.connection()))
    return hostile


@pytest.mark.parametrize("dag_id", sorted(load_registry().by_dag()))
def test_nightly_dag_lands_every_export(
    dag_id: str, dags: dict[str, Any], s3: Any, vendor_sims: Any, run_for_day: Any
) -> None:
    """Every DAG of the default registry lands, against the plainest reading of each
    vendor's docs and against the hostile one (python -m include.simulators --profile)."""
    simulators = vendor_sims
    dagrun = run_for_day(dags[dag_id], DAY)
    states = {(ti.task_id, ti.map_index): ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    for entry in load_registry().by_dag()[dag_id]:
        sim = simulators[entry.vendor.name]
        partition = entry.partition(DAY)
        if not entry.schema and entry.params.get("file_format") == "pdf":
            pdfs = [k for k in s3.keys(partition.raw_prefix) if k.endswith(".pdf")]
            assert len(pdfs) == 1, "the PDF report is archived as it came"
            assert s3.read(pdfs[0]).startswith(b"%PDF-")
            evidence = json.loads(s3.read(partition.manifest_key))
            assert (evidence["raw"]["key"], evidence["parts"]) == (pdfs[0], [])
            continue
        manifest = _check_partition(s3, entry, sim)
        declared = {c["name"]: c["type"] for c in manifest["schema"]}
        for column, type_name in entry.schema.items():
            assert declared[column] == type_name, column
        if "pdf" in entry.params.get("file_types", []):
            _check_audit_pdfs(s3, manifest, entry)


def _check_audit_pdfs(s3: Any, manifest: dict[str, Any], entry: ExportEntry) -> None:
    """Every audit event of the day is in exactly one archived PDF within the limit."""
    pdfs = [e for e in manifest["evidence"] if e["kind"] == "pdf"]
    assert pdfs, "the audit export archives PDFs"
    assert sum(p["expected_events"] for p in pdfs) == manifest["rows"]
    limit = entry.params["window_limit"] - entry.params["window_margin"]
    for pdf in pdfs:
        assert pdf["expected_events"] <= limit
        assert s3.read(pdf["key"]).startswith(b"%PDF-")
