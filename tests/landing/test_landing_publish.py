"""Raw zone -> curated zone through the local S3 server: manifest, versions, reruns,
retention, Object Lock, failures, SSE, progress lines."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compliance_exports import __version__
from compliance_exports.landing.errors import BadRowError, LandingError
from compliance_exports.landing.lake import LakeStore, ServerSideEncryption
from compliance_exports.landing.land import LakeOptions, attach_evidence, land_raw_object
from compliance_exports.landing.layout import Partition, new_token
from compliance_exports.landing.manifest import manifest_problems
from compliance_exports.landing.parquet import ParquetOptions
from tests.conftest import LocalS3
from tests.lake_checks import as_version_1

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 20)
PARTITION = Partition("oleria", "accessInventoryIdentitiesV2", DAY)
SCHEMA = {"identityId": "string", "dormantDays": "int64", "lastLoginAt": "timestamp"}
CSV_V1 = (
    b"identityId,identityName,dormantDays,lastLoginAt\n"
    b'0001,"Doe, Jane",3,2026-11-19T08:00:00Z\n'
    b"0002,Zo\xc3\xab,,2026-11-19 08:00:00.250\n"
    b"0003,,12,\n"
)
CSV_V2 = b"identityId,identityName,dormantDays,lastLoginAt\n0004,New,1,\n0005,Newer,2,\n"


def put_raw(
    s3: LocalS3, content: bytes, filename: str = "export.csv", content_type: str = "text/csv"
) -> dict[str, Any]:
    """What the fetch step leaves in the raw zone and returns (a RawObject dict)."""
    key = PARTITION.raw_key(filename, new_token())
    answer = s3.client().put_object(Bucket=s3.bucket, Key=key, Body=content)
    return {
        "bucket": s3.bucket,
        "key": key,
        "uri": f"s3://{s3.bucket}/{key}",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "version_id": answer.get("VersionId"),
        "downloaded_at": dt.datetime.now(dt.UTC).isoformat(),
        "content_type": content_type,
        "filename": filename,
        "job_id": "job-42",
        "vendor": PARTITION.vendor,
        "dataset": PARTITION.dataset,
        "day": DAY.isoformat(),
        "request": {"context": "accessInventoryIdentitiesV2", "client_secret": "hunter2"},
    }


def lake(s3: LocalS3, **options: Any) -> LakeOptions:
    return LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket, **options)


def land(
    s3: LocalS3, raw: dict[str, Any], lake_options: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    result = land_raw_object(
        raw, SCHEMA, PARTITION, lake=lake(s3, **(lake_options or {})), **kwargs
    )
    return dict(result)


def manifest(s3: LocalS3) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(s3.read(PARTITION.manifest_key))
    assert manifest_problems(loaded) == []
    return loaded


def versions(s3: LocalS3) -> list[dict[str, Any]]:
    """Every kept version's manifest copy, oldest first."""
    return [json.loads(s3.read(key)) for key in s3.keys(PARTITION.versions_prefix)]


def read_listed(s3: LocalS3) -> pa.Table:
    """The reader contract: read exactly the parts the manifest lists."""
    keys = [part["key"] for part in manifest(s3)["parts"]]
    return pa.concat_tables([pq.read_table(io.BytesIO(s3.read(key))) for key in keys])


def curated_parts(s3: LocalS3) -> list[str]:
    return [k for k in s3.keys(PARTITION.curated_prefix) if k.endswith(".parquet")]


def read_glob(s3: LocalS3, tmp_path: Path) -> list[tuple[Any, ...]]:
    """A glob reader (DuckDB over every part under the partition), valid when idle."""
    local = tmp_path / "glob"
    local.mkdir(exist_ok=True)
    for old in local.glob("*.parquet"):
        old.unlink()
    for key in curated_parts(s3):
        (local / key.rsplit("/", 1)[1]).write_bytes(s3.read(key))
    query = "SELECT identityId FROM read_parquet(?) ORDER BY 1"
    return duckdb.connect().execute(query, [str(local / "*.parquet")]).fetchall()


class TestLanding:
    def test_csv_lands_with_manifest(self, s3: LocalS3, tmp_path: Path) -> None:
        raw = put_raw(s3, CSV_V1)
        result = land(s3, raw)
        body = manifest(s3)
        assert result["manifest_uri"] == f"s3://{s3.bucket}/{PARTITION.manifest_key}"
        assert result["rows"] == body["rows"] == 3
        assert result["parts"] == [part["uri"] for part in body["parts"]]
        assert result["drift"] == {"added": ["identityName"], "missing": []}
        assert (body["vendor"], body["dataset"], body["day"]) == (
            "oleria",
            "accessInventoryIdentitiesV2",
            "2026-11-20",
        )
        assert body["data_interval"] == {
            "start": "2026-11-20T00:00:00+00:00",
            "end": "2026-11-21T00:00:00+00:00",
        }
        assert body["job_id"] == "job-42"
        assert body["request"] == {"context": "accessInventoryIdentitiesV2", "client_secret": "***"}
        assert (body["raw"]["sha256"], body["raw"]["size"]) == (raw["sha256"], len(CSV_V1))
        assert body["schema"][:3] == [
            {"name": "identityId", "type": "string", "declared": True},
            {"name": "dormantDays", "type": "int64", "declared": True},
            {"name": "lastLoginAt", "type": "timestamp", "declared": True},
        ]
        assert body["producer"] == {"name": "compliance-exports", "version": __version__}
        assert {"download_s", "convert_s", "upload_s", "publish_s", "total_s"} <= set(
            body["timings"]
        )
        assert sum(part["rows"] for part in body["parts"]) == 3
        assert all(part["bytes"] > 0 for part in body["parts"])
        table = read_listed(s3)
        assert table.column("identityId").to_pylist() == ["0001", "0002", "0003"]
        assert table.column("dormantDays").to_pylist() == [3, None, 12]
        assert table.column("lastLoginAt").to_pylist() == [
            dt.datetime(2026, 11, 19, 8, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 19, 8, 0, 0, 250000, tzinfo=dt.UTC),
            None,
        ]
        assert read_glob(s3, tmp_path) == [("0001",), ("0002",), ("0003",)]
        assert s3.keys(PARTITION.staging_prefix("x").rsplit("/", 2)[0]) == []
        assert s3.read(raw["key"]) == CSV_V1  # the original stays as it came

    def test_rerun_publishes_a_new_version_and_keeps_the_old_one_whole(
        self, s3: LocalS3, tmp_path: Path
    ) -> None:
        small_parts = ParquetOptions(row_group_rows=1, rows_per_part=1)
        first_raw = put_raw(s3, CSV_V1)
        land(s3, first_raw, parquet=small_parts)
        first = manifest(s3)
        assert len(first["parts"]) == 3
        land(s3, put_raw(s3, CSV_V2))
        second = manifest(s3)
        assert second["run_token"] != first["run_token"]
        assert (second["supersedes"], first["supersedes"]) == (first["version"], None)
        assert read_listed(s3).column("identityId").to_pylist() == ["0004", "0005"]
        # the superseded version is kept whole: its manifest copy, parts and original
        assert versions(s3) == [first, second]
        for part in first["parts"]:
            assert part["key"] in curated_parts(s3)
            assert hashlib.sha256(s3.read(part["key"])).hexdigest() == part["sha256"]
        assert s3.read(first_raw["key"]) == CSV_V1

    def test_keep_versions_one_leaves_only_the_live_version(
        self, s3: LocalS3, tmp_path: Path
    ) -> None:
        only_live = {"keep_versions": 1}
        first_raw = put_raw(s3, CSV_V1)
        land(s3, first_raw, only_live, parquet=ParquetOptions(row_group_rows=1, rows_per_part=1))
        land(s3, put_raw(s3, CSV_V2), only_live)
        second = manifest(s3)
        assert versions(s3) == [second]
        assert curated_parts(s3) == [part["key"] for part in second["parts"]]
        assert read_glob(s3, tmp_path) == [("0004",), ("0005",)]
        assert first_raw["key"] not in s3.keys("raw/")

    def test_retention_retires_only_superseded_versions_and_never_what_live_names(
        self, s3: LocalS3
    ) -> None:
        shared = put_raw(s3, CSV_V1)  # every version lands the same original
        for _ in range(4):
            land(s3, shared, {"keep_versions": 2})
        live, kept = manifest(s3), versions(s3)
        assert [v["version"] for v in kept] == [live["supersedes"], live["version"]]
        assert s3.read(shared["key"]) == CSV_V1  # named by the live version: never deleted
        named = {part["key"] for version in kept for part in version["parts"]}
        assert set(curated_parts(s3)) == named

    def test_a_version_1_manifest_becomes_a_kept_version_when_a_new_one_is_published(
        self, s3: LocalS3
    ) -> None:
        """A partition landed by the release before evidence versions keeps its parts."""
        land(s3, put_raw(s3, CSV_V1))
        old = as_version_1(manifest(s3))
        s3.client().delete_object(
            Bucket=s3.bucket, Key=PARTITION.version_key(manifest(s3)["version"])
        )
        s3.client().put_object(
            Bucket=s3.bucket, Key=PARTITION.manifest_key, Body=json.dumps(old).encode()
        )
        land(s3, put_raw(s3, CSV_V2))
        new = manifest(s3)
        assert new["supersedes"] == old["run_token"]
        assert [json.loads(s3.read(k)) for k in s3.keys(PARTITION.versions_prefix)] == [old, new]
        assert {part["key"] for part in old["parts"]} <= set(curated_parts(s3))

    def test_only_stray_parts_older_than_a_day_are_removed(self, s3: LocalS3) -> None:
        """A part no version names is a crashed run's, or a concurrent run's not yet
        published: only an old one is removed."""
        old_token = new_token(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        stray_old = f"{PARTITION.curated_prefix}part-{old_token}-00000.parquet"
        stray_new = f"{PARTITION.curated_prefix}part-{new_token()}-00000.parquet"
        for key in (stray_old, stray_new):
            s3.client().put_object(Bucket=s3.bucket, Key=key, Body=b"PAR1")
        land(s3, put_raw(s3, CSV_V1))
        assert stray_old not in curated_parts(s3)
        assert stray_new in curated_parts(s3)

    def test_same_file_twice_gives_the_same_rows(self, s3: LocalS3) -> None:
        raw = put_raw(s3, CSV_V1)
        land(s3, raw)
        land(s3, raw)
        assert read_listed(s3).num_rows == 3
        assert len(versions(s3)) == 2

    def test_empty_export_publishes_zero_rows_with_the_schema(self, s3: LocalS3) -> None:
        result = land(s3, put_raw(s3, b""))
        assert result["rows"] == 0
        table = read_listed(s3)
        assert table.num_rows == 0
        assert table.schema.field("dormantDays").type == pa.int64()

    def test_evidence_is_recorded(self, s3: LocalS3) -> None:
        pdf = put_raw(s3, b"%PDF-1.7\n", filename="audit.pdf", content_type="application/pdf")
        land(s3, put_raw(s3, CSV_V2), evidence=[pdf])
        recorded = manifest(s3)["evidence"]
        assert [item["key"] for item in recorded] == [pdf["key"]]
        assert (recorded[0]["kind"], recorded[0]["sha256"]) == ("pdf", pdf["sha256"])
        assert "request" not in recorded[0]  # the partition's request is the manifest's

    def test_pdf_stays_in_the_raw_zone_with_an_evidence_manifest(self, s3: LocalS3) -> None:
        raw = put_raw(s3, b"%PDF-1.7\n", filename="audit.pdf", content_type="application/pdf")
        result = land(s3, raw)
        assert result["rows"] == 0
        assert result["parts"] == []
        assert result["manifest_uri"] is not None
        assert [k for k in s3.keys("curated/") if k.endswith(".parquet")] == []
        recorded = manifest(s3)
        assert recorded["raw"]["key"] == raw["key"]
        assert recorded["raw"]["sha256"] == raw["sha256"]
        assert recorded["raw"]["format"] == "pdf"
        assert (recorded["rows"], recorded["parts"]) == (0, [])
        assert s3.read(raw["key"]) == b"%PDF-1.7\n"

    def test_changed_raw_object_is_refused(self, s3: LocalS3) -> None:
        raw = put_raw(s3, CSV_V1)
        raw["sha256"] = "0" * 64
        with pytest.raises(LandingError, match="sha256"):
            land(s3, raw)
        assert s3.keys("curated/") == []


class TestFailures:
    def test_bad_row_publishes_nothing_and_keeps_previous(self, s3: LocalS3) -> None:
        land(s3, put_raw(s3, CSV_V1))
        before = manifest(s3)
        bad = CSV_V2 + b"0006,Bad,many,\n"
        with pytest.raises(BadRowError, match=r"row 4, column 'dormantDays'.*'many'"):
            land(s3, put_raw(s3, bad))
        assert manifest(s3) == before
        assert curated_parts(s3) == [part["key"] for part in before["parts"]]
        assert s3.keys("_staging/") == []

    def test_crash_before_manifest_switch_keeps_previous_version(
        self, s3: LocalS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        land(s3, put_raw(s3, CSV_V1))
        before = manifest(s3)

        def crash(self: LakeStore, key: str, body: object, **kwargs: Any) -> None:
            raise ConnectionError("network gone before the manifest switch")

        monkeypatch.setattr(LakeStore, "put_json", crash)
        with pytest.raises(ConnectionError):
            land(s3, put_raw(s3, CSV_V2))
        monkeypatch.undo()
        assert manifest(s3) == before
        assert read_listed(s3).column("identityId").to_pylist() == ["0001", "0002", "0003"]
        assert read_glob(s3, tmp_path) == [("0001",), ("0002",), ("0003",)]
        assert s3.keys("_staging/") == []
        assert versions(s3) == [before]

    def test_crash_between_the_version_copy_and_the_switch_leaves_no_unpublished_version(
        self, s3: LocalS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        land(s3, put_raw(s3, CSV_V1))
        before = manifest(s3)
        real_put = LakeStore.put_json

        def live_put_fails(self: LakeStore, key: str, body: object, **kwargs: Any) -> Any:
            if key == PARTITION.manifest_key:
                raise ConnectionError("network gone at the switch")
            return real_put(self, key, body, **kwargs)

        monkeypatch.setattr(LakeStore, "put_json", live_put_fails)
        with pytest.raises(ConnectionError):
            land(s3, put_raw(s3, CSV_V2))
        monkeypatch.undo()
        assert manifest(s3) == before
        assert versions(s3) == [before]
        assert curated_parts(s3) == [part["key"] for part in before["parts"]]

    def test_crash_while_copying_parts_keeps_previous_version(
        self, s3: LocalS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        land(s3, put_raw(s3, CSV_V1))
        before = manifest(s3)
        real_copy = LakeStore.copy
        calls = []

        def copy_then_crash(self: LakeStore, source_key: str, key: str) -> str | None:
            calls.append(key)
            if len(calls) == 2:
                raise ConnectionError("copy interrupted")
            return real_copy(self, source_key, key)

        monkeypatch.setattr(LakeStore, "copy", copy_then_crash)
        with pytest.raises(ConnectionError):
            land(s3, put_raw(s3, CSV_V2), parquet=ParquetOptions(row_group_rows=1, rows_per_part=1))
        assert manifest(s3) == before
        assert curated_parts(s3) == [part["key"] for part in before["parts"]]

    def test_manifest_written_but_call_failed_keeps_new_version(
        self, s3: LocalS3, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        land(s3, put_raw(s3, CSV_V1))
        real_put = LakeStore.put_json

        def put_then_fail(self: LakeStore, key: str, body: object, **kwargs: Any) -> None:
            real_put(self, key, body, **kwargs)
            if key == PARTITION.manifest_key:
                raise TimeoutError("response lost after the PUT reached S3")

        monkeypatch.setattr(LakeStore, "put_json", put_then_fail)
        with pytest.raises(TimeoutError):
            land(s3, put_raw(s3, CSV_V2))
        assert read_listed(s3).column("identityId").to_pylist() == ["0004", "0005"]


class TestQuarantineAndEncryption:
    def test_quarantine_writes_rejected_rows_object(self, s3: LocalS3) -> None:
        bad = CSV_V2 + b"0006,Bad,many,\n0007,Short\n"
        result = land(s3, put_raw(s3, bad), on_bad_rows="quarantine")
        body = manifest(s3)
        assert result["rows"] == 2
        assert body["rejected"]["rows"] == result["rejected_rows"] == 2
        uri = body["rejected"]["uri"]
        assert uri == result["quarantine_uri"]
        assert uri.startswith(f"s3://{s3.bucket}/quarantine/vendor=oleria/")
        text = s3.read(uri.split("/", 3)[3]).decode()
        assert "export.csv,4,dormantDays,not a valid int64" in text
        assert "expected 4 fields, found 2" in text

    def test_sse_aes256_on_every_object_written(self, s3: LocalS3) -> None:
        land(s3, put_raw(s3, CSV_V1), {"sse": "AES256"})
        client = s3.client()
        for key in [PARTITION.manifest_key, *curated_parts(s3)]:
            head = client.head_object(Bucket=s3.bucket, Key=key)
            assert head["ServerSideEncryption"] == "AES256", key

    @pytest.mark.parametrize(
        ("algorithm", "key_id", "message"),
        [
            ("aws:kms", None, "needs a kms_key_id"),
            ("AES256", "key-1", "only used with sse aws:kms"),
            ("DES", None, "is not one of"),
        ],
    )
    def test_sse_choices_are_checked(
        self, algorithm: str, key_id: str | None, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            ServerSideEncryption(algorithm, key_id)

    def test_kms_arguments(self) -> None:
        assert ServerSideEncryption("aws:kms", "alias/lake").extra_args() == {
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": "alias/lake",
        }


@contextlib.contextmanager
def lake_log() -> Iterator[list[str]]:
    """The landing's log lines (Airflow's logging keeps them from pytest's caplog)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("compliance_exports.landing.lake")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class TestObjectLockAndEvidence:
    """A lock-enabled (hence versioned) bucket of the local S3 server: moto implements
    Object Lock retention, and refuses to delete a retained version."""

    @pytest.fixture
    def locked(self, s3: LocalS3) -> LocalS3:
        bucket = f"locked-{new_token().lower().replace('t', '-')[:24]}"
        s3.client().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        return LocalS3(endpoint_url=s3.endpoint_url, bucket=bucket)

    def test_evidence_is_locked_versioned_and_a_locked_version_is_never_retired(
        self, locked: LocalS3
    ) -> None:
        options = {"object_lock_mode": "GOVERNANCE", "object_lock_days": 1, "keep_versions": 1}
        first_raw = put_raw(locked, CSV_V1)
        land(locked, first_raw, options)
        first = manifest(locked)
        client = locked.client()
        assert first["raw"]["version_id"] == first_raw["version_id"] is not None
        assert all(part["version_id"] for part in first["parts"])
        assert first["object_lock"]["mode"] == "GOVERNANCE"
        copy_key = PARTITION.version_key(first["version"])
        for key in (copy_key, PARTITION.manifest_key):
            head = client.head_object(Bucket=locked.bucket, Key=key)
            assert head["ObjectLockMode"] == "GOVERNANCE", key
            assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC)
        copy_version = client.head_object(Bucket=locked.bucket, Key=copy_key)["VersionId"]
        with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
            client.delete_object(Bucket=locked.bucket, Key=copy_key, VersionId=copy_version)

        with lake_log() as lines:
            land(locked, put_raw(locked, CSV_V2), options)
        second = manifest(locked)
        assert second["supersedes"] == first["version"]
        # keep_versions: 1 would retire the first version, but its manifest copy is locked
        assert [v["version"] for v in versions(locked)] == [first["version"], second["version"]]
        assert any(
            f"version {first['version']} of" in line and "under Object Lock" in line
            for line in lines
        )
        for part in first["parts"]:
            assert part["key"] in locked.keys(PARTITION.curated_prefix)

    def test_attach_publishes_a_version_naming_the_same_data_plus_the_pdfs(
        self, s3: LocalS3
    ) -> None:
        land(s3, put_raw(s3, CSV_V1))
        landed = manifest(s3)
        pdf = put_raw(s3, b"%PDF-1.7\n", filename="audit.pdf", content_type="application/pdf")
        attach_evidence(PARTITION, [pdf], lake=lake(s3))
        attached = manifest(s3)
        assert attached["supersedes"] == landed["version"]
        assert (attached["parts"], attached["raw"]) == (landed["parts"], landed["raw"])
        assert [item["key"] for item in attached["evidence"]] == [pdf["key"]]
        assert versions(s3) == [landed, attached]

    def test_long_transfers_log_progress(self, s3: LocalS3) -> None:
        with lake_log() as lines:
            land(s3, put_raw(s3, CSV_V1), {"progress_interval": 0.0})
        assert any(line.startswith("downloaded s3://") and " MB" in line for line in lines)
        assert any(line.startswith("uploaded s3://") and "MB/s" in line for line in lines)
