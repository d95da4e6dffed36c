"""What every published partition must look like, whoever lands it (dag.test, the local
stack, the Celery stack): one check, shared by the suites that read a lake."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from compliance_exports.landing.layout import Partition
from compliance_exports.landing.manifest import manifest_problems


def check_published(
    keys: Callable[[str], list[str]], read: Callable[[str], bytes], partition: Partition
) -> tuple[dict[str, Any], Any]:
    """Assert ``partition`` holds its live version (valid manifest, its parts there with
    the rows stated) plus kept superseded versions, every Parquet object named by one of
    them and every manifest a version's copy; return the live manifest and its table
    (what a reader gets from the manifest's part list, ``None`` for no parts)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = partition.curated_prefix
    curated = keys(partition.curated_prefix)
    assert partition.manifest_key in curated, f"{where}: no manifest"
    manifest: dict[str, Any] = json.loads(read(partition.manifest_key))
    assert manifest_problems(manifest) == [], where
    assert manifest["day"] == partition.day.isoformat()
    assert (manifest["vendor"], manifest["dataset"]) == (partition.vendor, partition.dataset)
    versions = [json.loads(read(key)) for key in keys(partition.versions_prefix)]
    assert manifest in versions, f"{where}: the live version has no copy"
    listed = [p["key"] for p in manifest["parts"]]
    assert len(listed) == len(set(listed)), f"{where}: duplicate parts in the manifest"
    named = {p["key"] for version in versions for p in version["parts"]}
    parquet = {k for k in curated if k.endswith(".parquet")}
    assert set(listed) <= parquet, f"{where}: listed parts missing"
    assert parquet <= named, f"{where}: parts no version names: {parquet - named}"
    copies = {partition.version_key(version["version"]) for version in versions}
    others = {k for k in curated if not k.endswith(".parquet")}
    assert others == {partition.manifest_key, *copies}, curated
    tables = [pq.read_table(io.BytesIO(read(key))) for key in listed]
    for table, entry in zip(tables, manifest["parts"], strict=True):
        assert table.num_rows == entry["rows"], entry
    table = pa.concat_tables(tables) if tables else None
    rows = table.num_rows if table is not None else 0
    assert rows == manifest["rows"], f"{where}: {rows} != {manifest['rows']}"
    return manifest, table


V2_ONLY = ("export", "version", "supersedes", "vendor_rows", "evidence_expected", "object_lock")


def as_version_1(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` as the release before evidence versions wrote it (manifest_version 1):
    no version fields, no version ids, no part digests."""
    old = {k: v for k, v in manifest.items() if k not in V2_ONLY}
    old["manifest_version"] = 1
    old["raw"] = {
        k: v for k, v in manifest["raw"].items() if k not in ("version_id", "downloaded_at")
    }
    old["parts"] = [
        {k: part[k] for k in ("key", "uri", "rows", "bytes")} for part in manifest["parts"]
    ]
    old["evidence"] = [
        {k: v for k, v in item.items() if k not in ("version_id", "downloaded_at")}
        for item in manifest["evidence"]
    ]
    old["rejected"] = {"rows": manifest["rejected"]["rows"], "uri": manifest["rejected"]["uri"]}
    return old
