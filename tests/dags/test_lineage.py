"""OpenLineage from real DAG runs: dag.test() with the provider's file transport.

The OpenLineage provider's plugin reads its configuration once, when Airflow loads
plugins, and the test process loads them before this module runs (with no transport
configured, so OpenLineage is off for the rest of the suite). The fixture therefore
sets the file transport, clears the provider's cached configuration and registers a
fresh ``OpenLineageListener`` with the Task SDK's listener manager, the one the task
runner notifies; from there it is the provider's own path: the listener forks, asks the
task's extractor (the DefaultExtractor, which calls our
``get_openlineage_facets_on_complete``), and the file transport writes the events.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from compliance_exports.registry import ExportEntry, load_registry
from include.simulators.clock import days_ago

DAY = days_ago(1)
pytestmark = [pytest.mark.airflow, pytest.mark.integration]


def _clear_provider_config() -> None:
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@pytest.fixture
def lineage_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file the OpenLineage file transport appends this test's events to."""
    from airflow.providers.openlineage.plugins.listener import OpenLineageListener
    from airflow.sdk.listener import get_listener_manager

    path = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "compliance-exports-test")
    _clear_provider_config()
    manager = get_listener_manager()
    registered = [p for p in manager.pm.get_plugins() if isinstance(p, OpenLineageListener)]
    listener = None if registered else OpenLineageListener()
    if listener is not None:
        manager.add_listener(listener)
    try:
        yield path
    finally:
        if listener is not None:
            manager.pm.unregister(listener)
        monkeypatch.undo()
        _clear_provider_config()


def _events(path: Path) -> list[dict[str, Any]]:
    assert path.exists(), "no OpenLineage event was written"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _complete(events: list[dict[str, Any]], dag_id: str, entry: ExportEntry, task: str) -> Any:
    name = f"{dag_id}.{entry.name}.{task}"
    found = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == name]
    assert len(found) == 1, f"{name}: {len(found)} COMPLETE events"
    return found[0]


def _dataset(item: dict[str, Any]) -> tuple[str, str]:
    return item["namespace"], item["name"]


def _check_export(event: dict[str, Any], entry: ExportEntry, manifest: dict[str, Any]) -> None:
    host = urlsplit(_vendor_base_url(entry)).netloc
    assert [_dataset(i) for i in event["inputs"]] == [
        (f"{entry.vendor.name}://{host}", entry.dataset)
    ]
    raw = manifest["raw"]
    [output] = event["outputs"]
    assert _dataset(output) == (f"s3://{raw['bucket']}", raw["key"])
    stats = output["outputFacets"]["outputStatistics"]
    assert stats["size"] == raw["size"]
    assert stats.get("rowCount") == manifest["vendor_rows"]


def _check_land(event: dict[str, Any], entry: ExportEntry, live: dict[str, Any], s3: Any) -> None:
    """``live``: the partition's live manifest, the version land published or (an
    evidence file attached since) the one after it."""
    partition = entry.partition(DAY)
    [output] = event["outputs"]
    version = output["facets"]["version"]["datasetVersion"]
    assert version in (live["version"], live["supersedes"])
    manifest = json.loads(s3.read(partition.version_key(version)))
    raw = manifest["raw"]
    assert [_dataset(i) for i in event["inputs"]] == [(f"s3://{raw['bucket']}", raw["key"])]
    assert _dataset(output) == (f"s3://{entry.lake.bucket}", partition.curated_prefix.rstrip("/"))
    stats = output["outputFacets"]["outputStatistics"]
    assert stats["rowCount"] == manifest["rows"]
    assert stats["size"] == sum(p["bytes"] for p in manifest["parts"])
    assert stats["fileCount"] == len(manifest["parts"])
    if not manifest["parts"]:  # a PDF report: evidence only, no table
        assert "schema" not in output["facets"]
        return
    assert manifest["rows"] > 0
    parquet = pq.read_schema(io.BytesIO(s3.read(manifest["parts"][0]["key"])))
    fields = output["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        (field.name, str(field.type)) for field in parquet
    ]
    assert [f["name"] for f in fields] == [c["name"] for c in manifest["schema"]]


def _vendor_base_url(entry: ExportEntry) -> str:
    from airflow.sdk import BaseHook

    host: str = BaseHook.get_connection(entry.conn_id).host
    return host


def _starts(events: list[dict[str, Any]], complete: dict[str, Any]) -> int:
    """How many times the task run of ``complete`` started: 2 for a task that deferred
    and resumed (the listener reports each start of the same run)."""
    run_id = complete["run"]["runId"]
    return len([e for e in events if e["eventType"] == "START" and e["run"]["runId"] == run_id])


@pytest.mark.parametrize("dag_id", ["veza_exports", "sailpoint_exports", "maxsight_exports"])
def test_export_and_land_report_their_datasets(
    dag_id: str,
    dags: dict[str, Any],
    s3: Any,
    simulators: Any,
    run_for_day: Any,
    lineage_events: Path,
) -> None:
    """A deferred export (Veza, SailPoint: the facets come from the resumed instance,
    SailPoint's with the row count its job reported) and a plain fetch (Maxsight) report
    the vendor export in and the raw object out; each land task reports the raw object
    in and the partition out with the Parquet schema, rows and bytes of the manifest it
    published."""
    dagrun = run_for_day(dags[dag_id], DAY)
    states = {(ti.task_id, ti.map_index): ti.state for ti in dagrun.get_task_instances()}
    assert dagrun.state == "success", states
    events = _events(lineage_events)
    for entry in load_registry().by_dag()[dag_id]:
        manifest = json.loads(s3.read(entry.partition(DAY).manifest_key))
        if dag_id == "maxsight_exports":
            fetched = _complete(events, dag_id, entry, "fetch_csv")
        else:
            fetched = _complete(events, dag_id, entry, "export")
            assert _starts(events, fetched) == 2, "the export task deferred and resumed"
        _check_export(fetched, entry, manifest)
        _check_land(_complete(events, dag_id, entry, "land"), entry, manifest, s3)


def test_a_keyed_snapshot_reports_its_changes_partition(
    tmp_path: Path,
    airflow_db: Path,
    s3: Any,
    sim: Any,
    run_for_day: Any,
    monkeypatch: pytest.MonkeyPatch,
    lineage_events: Path,
) -> None:
    """Veza's access review (primary_key: result_id) on two days: the second day's land
    also writes ``dataset=access_review__changes``, having read the first day's partition."""
    from compliance_exports.landing.land import changes_partition
    from tests.dags.test_access_drift import NAME, registry_document
    from tests.dags.test_evidence import Dags, run

    dags = Dags(tmp_path, monkeypatch)
    first, second = days_ago(3), days_ago(2)
    assert run(dags.load(registry_document())["veza_exports"], run_for_day, first)["run"] == (
        "success"
    )
    narrowed = dags.load(registry_document(filter="source.is_active eq true"))["veza_exports"]
    assert run(narrowed, run_for_day, second)["run"] == "success"

    entry = load_registry().get(NAME)
    lands = [
        e
        for e in _events(lineage_events)
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"veza_exports.{NAME}.land"
    ]
    assert len(lands) == 2
    day_one, day_two = (entry.partition(day) for day in (first, second))
    assert [o["name"] for o in lands[0]["outputs"]] == [day_one.curated_prefix.rstrip("/")]
    changes = changes_partition(day_two)
    assert [o["name"] for o in lands[1]["outputs"]] == [
        day_two.curated_prefix.rstrip("/"),
        changes.curated_prefix.rstrip("/"),
    ]
    assert [i["name"] for i in lands[1]["inputs"]][1:] == [day_one.curated_prefix.rstrip("/")]
    manifest = json.loads(s3.read(changes.manifest_key))
    output = lands[1]["outputs"][1]
    assert output["facets"]["version"]["datasetVersion"] == manifest["version"]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == manifest["rows"] > 0
    fields = output["facets"]["schema"]["fields"]
    assert [f["name"] for f in fields] == [c["name"] for c in manifest["schema"]]


def test_land_serializes_the_same_at_every_parse() -> None:
    """The entry is a class attribute of a per-entry subclass named LandOperator, not a
    partial argument: two parses serialize alike (no new DAG version per parse)."""
    from airflow.serialization.serialized_objects import DagSerialization

    from compliance_exports.dag_factory import build_dags

    def serialized() -> dict[str, str]:
        return {
            dag_id: json.dumps(DagSerialization.to_dict(dag), sort_keys=True, default=str)
            for dag_id, dag in build_dags().items()
        }

    assert serialized() == serialized()
    tasks = DagSerialization.to_dict(build_dags()["veza_exports"])["dag"]["tasks"]
    lands = [t["__var"] for t in tasks if t["__var"]["task_id"].endswith(".land")]
    assert {(t["task_type"], t["_task_module"]) for t in lands} == {
        ("LandOperator", "compliance_exports.landing.operator")
    }
