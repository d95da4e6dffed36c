"""Access drift through real Airflow: a keyed snapshot's second day publishes exactly
the keys that changed (``dataset=<d>__changes``), checked against the two published
days' own rows; its first day publishes none."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from compliance_exports.landing.land import changes_partition
from compliance_exports.registry import DEFAULT_REGISTRY, load_registry
from include.simulators.clock import days_ago
from tests.conftest import LocalS3
from tests.dags.test_evidence import Dags, run

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

NAME = "veza_access_review"


def registry_document(**veza: Any) -> dict[str, Any]:
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    defaults = {**shipped["defaults"], "retry_delay": "1s", "poll_interval": "1s"}
    defaults["snapshot_grace"] = "7d"  # two consecutive past days of a snapshot
    entry = copy.deepcopy(shipped["exports"][NAME])
    entry["veza"].update(veza)
    return {"defaults": defaults, "exports": {NAME: entry}}


def rows(s3: LocalS3, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        row
        for part in manifest["parts"]
        for row in pq.read_table(io.BytesIO(s3.read(part["key"]))).to_pylist()
    ]


def test_a_snapshot_that_changed_publishes_exactly_its_changed_keys(
    tmp_path: Path,
    airflow_db: Path,
    s3: LocalS3,
    sim: Any,
    run_for_day: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dags = Dags(tmp_path, monkeypatch)
    first, second = days_ago(3), days_ago(2)
    states = run(dags.load(registry_document())["veza_exports"], run_for_day, first)
    assert states["run"] == "success"
    entry = load_registry().get(NAME)
    assert s3.keys(changes_partition(entry.partition(first)).curated_prefix) == []

    # the next day the export keeps only active identities' rows: the others are removed
    narrowed = dags.load(registry_document(filter="source.is_active eq true"))["veza_exports"]
    assert run(narrowed, run_for_day, second)["run"] == "success"

    before = {
        r["result_id"]: r
        for r in rows(s3, json.loads(s3.read(entry.partition(first).manifest_key)))
    }
    after = {
        r["result_id"]: r
        for r in rows(s3, json.loads(s3.read(entry.partition(second).manifest_key)))
    }
    target = changes_partition(entry.partition(second))
    manifest = json.loads(s3.read(target.manifest_key))
    published = rows(s3, manifest)
    expected_removed = sorted(set(before) - set(after))
    expected_added = sorted(set(after) - set(before))
    expected_changed = sorted(key for key in set(before) & set(after) if before[key] != after[key])
    assert expected_removed, "the filter removed some rows"
    by_change: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    for row in published:
        by_change[row["change"]].append(row["result_id"])
    assert by_change == {
        "added": expected_added,
        "removed": expected_removed,
        "changed": expected_changed,
    }
    counts = manifest["changes_of"]
    assert (counts["added"], counts["removed"], counts["changed"]) == (
        len(expected_added),
        len(expected_removed),
        len(expected_changed),
    )
    assert counts["previous_day"] == first.isoformat()
    assert dt.date.fromisoformat(manifest["day"]) == second
