"""A keyed snapshot's changes partition, published through the local S3 server."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from compliance_exports.landing.land import (
    LakeOptions,
    changes_partition,
    land_raw_object,
    publish_changes,
)
from compliance_exports.landing.layout import Partition, new_token
from compliance_exports.landing.manifest import manifest_problems
from tests.conftest import LocalS3

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 20)
SCHEMA = {"identityId": "string", "department": "string", "isAdmin": "bool", "logins": "int64"}
DAY_1 = b"identityId,department,isAdmin,logins\nid-1,IT,false,3\nid-2,HR,false,\nid-3,IT,true,9\n"
# id-1: department changed; id-2: logins null -> 4; id-3 removed; id-4 added
DAY_2 = (
    b"identityId,department,isAdmin,logins\nid-1,Sales,false,3\nid-2,HR,false,4\nid-4,IT,false,1\n"
)


def land_day(s3: LocalS3, day: dt.date, content: bytes) -> Partition:
    partition = Partition("oleria", "identities", day)
    key = partition.raw_key("export.csv", new_token())
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=content)
    raw = {
        "bucket": s3.bucket, "key": key, "uri": f"s3://{s3.bucket}/{key}",
        "sha256": hashlib.sha256(content).hexdigest(), "size": len(content),
        "content_type": "text/csv", "filename": "export.csv", "vendor": "oleria",
        "dataset": "identities", "day": day.isoformat(), "job_id": "job-1", "request": {},
    }  # fmt: skip
    land_raw_object(raw, SCHEMA, partition, lake=LakeOptions(s3.conn_id, s3.bucket))
    return partition


def changes(s3: LocalS3, partition: Partition) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    target = changes_partition(partition)
    manifest: dict[str, Any] = json.loads(s3.read(target.manifest_key))
    assert manifest_problems(manifest) == []
    rows = [
        row
        for part in manifest["parts"]
        for row in pq.read_table(io.BytesIO(s3.read(part["key"]))).to_pylist()
    ]
    return manifest, rows


def test_the_first_day_has_no_changes_partition_and_says_so(s3: LocalS3) -> None:
    partition = land_day(s3, DAY, DAY_1)
    result = publish_changes(partition, ["identityId"], lake=LakeOptions(s3.conn_id, s3.bucket))
    assert result["published"] is False
    assert "first day of identities" in result["reason"]
    assert s3.keys(changes_partition(partition).curated_prefix) == []


def test_the_changes_partition_holds_exactly_the_added_removed_and_changed_keys(
    s3: LocalS3,
) -> None:
    land_day(s3, DAY - dt.timedelta(days=2), DAY_1)  # a gap day between: still "previous"
    partition = land_day(s3, DAY, DAY_2)
    lake = LakeOptions(s3.conn_id, s3.bucket)
    result = publish_changes(partition, ["identityId"], lake=lake, export="oleria_identities")
    assert result["published"] is True
    assert (result["added"], result["removed"], result["changed"]) == (1, 1, 2)
    assert result["previous_day"] == (DAY - dt.timedelta(days=2)).isoformat()

    manifest, rows = changes(s3, partition)
    assert manifest["dataset"] == "identities__changes"
    assert manifest["rows"] == 4
    assert (
        manifest["changes_of"]["current_version"]
        == json.loads(s3.read(partition.manifest_key))["version"]
    )
    by_key = {row["identityId"]: row for row in rows}
    assert [row["identityId"] for row in rows] == ["id-1", "id-2", "id-3", "id-4"]
    assert by_key["id-1"]["change"] == "changed"
    assert by_key["id-1"]["changed_columns"] == ["department"]
    assert by_key["id-1"]["before"]["department"] == "IT"
    assert by_key["id-1"]["after"]["department"] == "Sales"
    assert by_key["id-1"]["after"]["isAdmin"] is None  # unchanged columns stay empty
    assert by_key["id-2"]["changed_columns"] == ["logins"]
    assert (by_key["id-2"]["before"]["logins"], by_key["id-2"]["after"]["logins"]) == (None, 4)
    assert by_key["id-3"]["change"] == "removed"
    assert by_key["id-3"]["after"] is None
    assert by_key["id-4"]["change"] == "added"
    assert by_key["id-4"]["before"] is None
    assert by_key["id-4"]["after"] == {"department": "IT", "isAdmin": False, "logins": 1}
