"""Fetch lineage goes to Airflow's hook-lineage collector."""

from __future__ import annotations

import pytest
from airflow.sdk import lineage

from compliance_exports.core.lineage import record_fetch_lineage


def test_input_endpoint_and_output_object_are_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = lineage.HookLineageCollector()
    monkeypatch.setattr(lineage, "get_hook_lineage_collector", lambda: collector)
    hook = object()
    record_fetch_lineage(
        hook,
        source_uri="https://acme.vezacloud.com/api/preview/awf/exports/access_review/e1:download",
        target_uri="s3://compliance-lake/raw/vendor=veza/dataset=ar/dt=2026-11-20/ar.csv",
    )
    collected = collector.collected_assets
    assert [i.asset.uri for i in collected.inputs] == [
        "https://acme.vezacloud.com/api/preview/awf/exports/access_review/e1:download"
    ]
    assert [o.asset.uri for o in collected.outputs] == [
        "s3://compliance-lake/raw/vendor=veza/dataset=ar/dt=2026-11-20/ar.csv"
    ]
    assert collected.outputs[0].context is hook
