"""The OpenLineage datasets of fetch and land tasks (core/lineage.py), and what happens
without the provider (the wheel does not depend on it)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from openlineage.client.serde import Serde

from compliance_exports.core.lineage import (
    fetch_lineage,
    land_lineage,
    parquet_type,
    vendor_namespace,
)

RAW = {
    "bucket": "compliance-lake",
    "key": "raw/vendor=veza/dataset=ar/dt=2026-11-20/run=20261121T010000Z-0000abcd/ar.csv",
    "size": 1234,
    "vendor": "veza",
    "dataset": "ar",
    "vendor_rows": 7,
}
SOURCE = "https://acme.vezacloud.com/api/preview/awf/exports/access_review/e1:download"


def as_json(item: Any) -> Any:
    import json

    return json.loads(Serde.to_json(item))


def test_vendor_namespace_is_the_vendor_and_its_host() -> None:
    assert vendor_namespace("veza", SOURCE) == "veza://acme.vezacloud.com"
    assert (
        vendor_namespace("sailpoint", "http://127.0.0.1:8081/v3/x") == "sailpoint://127.0.0.1:8081"
    )


def test_fetch_reads_the_vendor_export_and_writes_the_raw_object() -> None:
    pdf = {**RAW, "key": RAW["key"].replace("ar.csv", "ar.pdf"), "vendor_rows": None}
    lineage = fetch_lineage([(SOURCE, RAW), (SOURCE, pdf)])
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("veza://acme.vezacloud.com", "ar")]
    outputs = [as_json(d) for d in lineage.outputs]
    assert [(o["namespace"], o["name"]) for o in outputs] == [
        ("s3://compliance-lake", RAW["key"]),
        ("s3://compliance-lake", pdf["key"]),
    ]
    stats = [o["outputFacets"]["outputStatistics"] for o in outputs]
    assert [(s.get("rowCount"), s["size"], s["fileCount"]) for s in stats] == [
        (7, 1234, 1),
        (None, 1234, 1),
    ]


MANIFEST = {
    "version": "20261121T020000Z-0000beef",
    "rows": 12,
    "parts": [{"bytes": 100}, {"bytes": 50}],
    "schema": [
        {"name": "id", "type": "string", "declared": True},
        {"name": "at", "type": "timestamp", "declared": True},
        {"name": "amount", "type": "decimal(18,2)", "declared": True},
        {"name": "extra", "type": "string", "declared": False},
    ],
}


def test_land_reads_the_raw_object_and_writes_the_partition() -> None:
    prefix = "curated/vendor=veza/dataset=ar/dt=2026-11-20/"
    lineage = land_lineage(RAW, [(prefix, MANIFEST)], bucket="compliance-lake")
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("s3://compliance-lake", RAW["key"])]
    [output] = [as_json(d) for d in lineage.outputs]
    assert (output["namespace"], output["name"]) == (
        "s3://compliance-lake",
        "curated/vendor=veza/dataset=ar/dt=2026-11-20",
    )
    fields = output["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"], f["ordinal_position"]) for f in fields] == [
        ("id", "string", 1),
        ("at", "timestamp[us, tz=UTC]", 2),
        ("amount", "decimal128(18, 2)", 3),
        ("extra", "string", 4),
    ]
    stats = output["outputFacets"]["outputStatistics"]
    assert (stats["rowCount"], stats["size"], stats["fileCount"]) == (12, 150, 2)
    assert output["facets"]["version"]["datasetVersion"] == MANIFEST["version"]


def test_a_pdf_partition_has_no_schema_and_a_failed_land_only_its_input() -> None:
    evidence = {**MANIFEST, "rows": 0, "parts": []}
    lineage = land_lineage(RAW, [("curated/x/", evidence)], bucket="b-1")
    [output] = [as_json(d) for d in lineage.outputs]
    assert "schema" not in output["facets"]
    assert output["outputFacets"]["outputStatistics"]["fileCount"] == 0
    failed = land_lineage(RAW, [], bucket="b-1")
    assert (len(failed.inputs), failed.outputs) == (1, [])


def test_a_keyed_snapshot_also_writes_its_changes_from_the_earlier_day() -> None:
    day = "curated/vendor=veza/dataset=ar/dt=2026-11-20/"
    changes = {
        **MANIFEST,
        "rows": 3,
        "schema": [{"name": "change", "type": "string"}, {"name": "at", "type": "timestamp[us]"}],
    }
    lineage = land_lineage(
        RAW,
        [(day, MANIFEST), (day.replace("=ar/", "=ar__changes/"), changes)],
        bucket="b-1",
        compared=["curated/vendor=veza/dataset=ar/dt=2026-11-19/"],
    )
    assert [d.name for d in lineage.inputs] == [
        RAW["key"],
        "curated/vendor=veza/dataset=ar/dt=2026-11-19",
    ]
    outputs = [as_json(d) for d in lineage.outputs]
    assert [o["name"] for o in outputs] == [
        "curated/vendor=veza/dataset=ar/dt=2026-11-20",
        "curated/vendor=veza/dataset=ar__changes/dt=2026-11-20",
    ]
    fields = outputs[1]["facets"]["schema"]["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        ("change", "string"),
        ("at", "timestamp[us]"),
    ]
    assert outputs[1]["outputFacets"]["outputStatistics"]["rowCount"] == 3


def test_an_unknown_type_is_reported_as_declared() -> None:
    assert parquet_type("int64") == "int64"
    assert parquet_type("geometry") == "geometry"


@pytest.mark.parametrize("blocked", ["openlineage", "airflow.providers.openlineage.extractors"])
def test_without_the_provider_the_package_imports_and_reports_nothing(blocked: str) -> None:
    """In a fresh interpreter where the OpenLineage client (or the provider's extractors)
    cannot be imported, the DAG factory, the operators and the lineage module import and
    the lineage hooks answer None (the listener that would call them is not there either).
    Airflow itself still discovers the installed provider package; a wheel install
    without it is tests/packaging' business."""
    script = f"""
import sys
sys.modules[{blocked!r}] = None  # import {blocked} raises ImportError
from compliance_exports import dag_factory
from compliance_exports.core.lineage import openlineage_available
from compliance_exports.landing.operator import LandOperator
from compliance_exports.vendors.veza.operators import VezaAccessReviewExportOperator
assert not openlineage_available()
op = VezaAccessReviewExportOperator(
    task_id="t", dataset="ar", bucket="b-1", certification_id="c"
)
op._fetched.append(("https://h/x", {{"bucket": "b", "key": "k", "size": 1}}))
assert op.get_openlineage_facets_on_complete(None) is None
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
