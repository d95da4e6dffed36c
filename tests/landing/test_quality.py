"""Data-quality gates through the local S3 server: every check in each mode, the previous
version kept live by a failing gate, results in the manifest, the log and the landing
result; the registry's ``quality`` block validated at parse time."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

import pytest

from compliance_exports.landing.land import LakeOptions, attach_evidence, land_raw_object
from compliance_exports.landing.layout import Partition, new_token
from compliance_exports.landing.manifest import manifest_problems
from compliance_exports.landing.quality import (
    CHECKS,
    QualityGateError,
    QualityPolicy,
)
from compliance_exports.registry import RegistryError, parse_registry
from tests.conftest import LocalS3

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 20)
SCHEMA = {"id": "string", "score": "int64"}
# every check off but bad_values (always reported) and primary_key_unique (off by
# default unless the export declares a primary key)
OFF = {check: "off" for check in CHECKS if check not in {"bad_values", "primary_key_unique"}}


def partition(day: dt.date = DAY) -> Partition:
    return Partition("oleria", "quality_events", day)


def csv(rows: int, start: int = 0, header: str = "id,score") -> bytes:
    lines = [header, *(f"{i:04d},{i % 7}" for i in range(start, start + rows))]
    return ("\n".join(lines) + "\n").encode()


def put_raw(
    s3: LocalS3, content: bytes, day: dt.date = DAY, vendor_rows: int | None = None
) -> dict[str, Any]:
    where = partition(day)
    key = where.raw_key("export.csv", new_token())
    answer = s3.client().put_object(Bucket=s3.bucket, Key=key, Body=content)
    return {
        "bucket": s3.bucket,
        "key": key,
        "uri": f"s3://{s3.bucket}/{key}",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "version_id": answer.get("VersionId"),
        "downloaded_at": dt.datetime.now(dt.UTC).isoformat(),
        "content_type": "text/csv",
        "filename": "export.csv",
        "vendor": where.vendor,
        "dataset": where.dataset,
        "day": day.isoformat(),
        "vendor_rows": vendor_rows,
    }


def land(
    s3: LocalS3,
    content: bytes,
    policy: dict[str, Any] | None = None,
    *,
    day: dt.date = DAY,
    vendor_rows: int | None = None,
    primary_key: tuple[str, ...] = (),
    schema: dict[str, str] | None = None,
) -> dict[str, Any]:
    result = land_raw_object(
        put_raw(s3, content, day, vendor_rows),
        schema or SCHEMA,
        partition(day),
        lake=LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket),
        export="quality_events",
        quality=QualityPolicy.from_mapping({**OFF, **(policy or {})}),
        primary_key=primary_key,
    )
    return dict(result)


def live(s3: LocalS3, day: dt.date = DAY) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(s3.read(partition(day).manifest_key))
    assert manifest_problems(body) == []
    return body


def versions(s3: LocalS3) -> list[str]:
    return s3.keys(partition().versions_prefix)


def result_of(results: list[dict[str, Any]], check: str) -> dict[str, Any]:
    (found,) = [r for r in results if r["check"] == check]
    return found


def fails_and_keeps_previous(s3: LocalS3, content: bytes, check: str, **kwargs: Any) -> str:
    """Land a good version, then ``content`` with ``check: fail``: the gate refuses it
    and the good version stays live, unchanged. Returns the error message."""
    land(s3, csv(20))
    before, kept = live(s3), versions(s3)
    parts_before = [k for k in s3.keys(partition().curated_prefix) if k.endswith(".parquet")]
    with pytest.raises(QualityGateError) as failed:
        land(s3, content, {check: "fail", **kwargs.pop("policy", {})}, **kwargs)
    assert live(s3) == before, "the previous version is live, unchanged"
    assert versions(s3) == kept
    parts_after = [k for k in s3.keys(partition().curated_prefix) if k.endswith(".parquet")]
    assert parts_after == parts_before
    assert not s3.keys("_staging/"), "nothing staged"
    message = str(failed.value)
    assert f"quality_events dt={DAY.isoformat()} ({check})" in message
    assert [r["check"] for r in failed.value.failed] == [check]
    return message


def warns_and_publishes(
    s3: LocalS3, content: bytes, check: str, caplog: pytest.LogCaptureFixture, **kwargs: Any
) -> dict[str, Any]:
    """``check: warn``: published, the warning in the manifest, the result and the log."""
    with caplog.at_level(logging.INFO, logger="compliance_exports.landing.quality"):
        result = land(s3, content, {check: "warn", **kwargs.pop("policy", {})}, **kwargs)
    found = result_of(live(s3)["quality"], check)
    assert found["status"] == "warn"
    assert result["quality"] == live(s3)["quality"]
    assert result["warnings"] == [f"{check}: {found['detail']}"]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [check in r.getMessage() for r in warned] == [True]
    assert "quality_events" in warned[0].getMessage()
    return found


class TestEmpty:
    def test_fail(self, s3: LocalS3) -> None:
        assert "0 rows landed" in fails_and_keeps_previous(s3, csv(0), "empty")

    def test_warn(self, s3: LocalS3, caplog: pytest.LogCaptureFixture) -> None:
        found = warns_and_publishes(s3, csv(0), "empty", caplog)
        assert found["detail"] == "0 rows landed"
        assert live(s3)["rows"] == 0

    def test_off_and_pass(self, s3: LocalS3) -> None:
        result = land(s3, csv(0))
        assert result["quality"] == [result_of(result["quality"], "bad_values")]
        result = land(s3, csv(3), {"empty": "fail"})
        assert result_of(result["quality"], "empty") == {
            "check": "empty",
            "status": "pass",
            "detail": "3 rows",
        }


class TestVendorRows:
    def test_fail(self, s3: LocalS3) -> None:
        message = fails_and_keeps_previous(s3, csv(9), "vendor_rows", vendor_rows=10)
        assert "9 rows landed, the vendor reported 10" in message

    def test_warn(self, s3: LocalS3, caplog: pytest.LogCaptureFixture) -> None:
        found = warns_and_publishes(s3, csv(9), "vendor_rows", caplog, vendor_rows=12)
        assert found["detail"] == "9 rows landed, the vendor reported 12"

    def test_pass_skip_and_off(self, s3: LocalS3) -> None:
        result = land(s3, csv(9), {"vendor_rows": "fail"}, vendor_rows=9)
        assert result_of(result["quality"], "vendor_rows")["status"] == "pass"
        result = land(s3, csv(9), {"vendor_rows": "fail"}, vendor_rows=None)
        skipped = result_of(result["quality"], "vendor_rows")
        assert skipped == {
            "check": "vendor_rows",
            "status": "skipped",
            "detail": "the vendor reports no row count",
        }
        result = land(s3, csv(9), {"vendor_rows": "off"}, vendor_rows=1)
        assert "vendor_rows" not in {r["check"] for r in result["quality"]}


class TestTrend:
    @staticmethod
    def history(s3: LocalS3, counts: list[int]) -> None:
        """Publish earlier days (the most recent first: DAY-1, DAY-2, ...)."""
        for back, rows in enumerate(counts, start=1):
            land(s3, csv(rows), day=DAY - dt.timedelta(days=back))

    def test_fail_outside_the_band(self, s3: LocalS3) -> None:
        self.history(s3, [100, 110, 90, 95])
        land(s3, csv(100))  # within the band: published
        before = live(s3)
        with pytest.raises(QualityGateError, match="trend") as failed:
            land(s3, csv(30), {"trend": "fail"})
        assert "30 rows is outside [48.75, 195]" in str(failed.value)
        assert "median 97.5 of 4 earlier partitions" in str(failed.value)
        assert live(s3) == before

    def test_warn_above_the_band(self, s3: LocalS3, caplog: pytest.LogCaptureFixture) -> None:
        self.history(s3, [10, 10, 10])
        found = warns_and_publishes(s3, csv(21), "trend", caplog)
        assert found["detail"].startswith("21 rows is outside [5, 20]")

    def test_band_and_days_are_settings(self, s3: LocalS3) -> None:
        # the most recent 3 of 5 earlier days: 10, 10, 10 (not the older 100s)
        self.history(s3, [10, 10, 10, 100, 100])
        settings = {"trend": "fail", "trend_days": 3, "trend_band": [0.9, 1.1]}
        result = land(s3, csv(11), settings)
        found = result_of(result["quality"], "trend")
        assert found["status"] == "pass"
        assert "median 10 of 3 earlier partitions" in found["detail"]
        with pytest.raises(QualityGateError, match="12 rows is outside"):
            land(s3, csv(12), settings)

    def test_skipped_without_three_earlier_partitions(self, s3: LocalS3) -> None:
        self.history(s3, [10, 10])
        # a gap: an earlier day beyond 3 x trend_days is not looked at
        land(s3, csv(10), day=DAY - dt.timedelta(days=10))
        result = land(s3, csv(1000), {"trend": "fail", "trend_days": 3})
        found = result_of(result["quality"], "trend")
        assert found["status"] == "skipped"
        assert found["detail"] == (
            "2 earlier published partition(s) in the last 9 days; the trend needs at least 3"
        )


class TestColumns:
    RENAMED = b"id,points\n0001,3\n0002,4\n"  # score renamed to points

    def test_missing_fail(self, s3: LocalS3) -> None:
        message = fails_and_keeps_previous(s3, self.RENAMED, "missing_columns")
        assert "declared column(s) not in the file: score" in message

    def test_new_fail(self, s3: LocalS3) -> None:
        message = fails_and_keeps_previous(s3, self.RENAMED, "new_columns")
        assert "undeclared column(s) in the file (landed as text): points" in message

    def test_warn(self, s3: LocalS3, caplog: pytest.LogCaptureFixture) -> None:
        found = warns_and_publishes(s3, self.RENAMED, "missing_columns", caplog)
        assert found["detail"] == "declared column(s) not in the file: score"
        assert live(s3)["drift"] == {"added": ["points"], "missing": ["score"]}

    def test_both_warn_in_one_landing(self, s3: LocalS3) -> None:
        result = land(s3, self.RENAMED, {"missing_columns": "warn", "new_columns": "warn"})
        assert result["warnings"] == [
            "missing_columns: declared column(s) not in the file: score",
            "new_columns: undeclared column(s) in the file (landed as text): points",
        ]

    def test_pass_off_and_no_schema(self, s3: LocalS3) -> None:
        policy = {"missing_columns": "fail", "new_columns": "fail"}
        result = land(s3, csv(2), policy)
        assert {r["check"]: r["status"] for r in result["quality"]} == {
            "missing_columns": "pass",
            "new_columns": "pass",
            "bad_values": "pass",
        }
        off = land(s3, self.RENAMED, {"missing_columns": "off", "new_columns": "off"})
        assert [r["check"] for r in off["quality"]] == ["bad_values"]
        # nothing declared: every column is "new", and that is not a finding
        bare = land_raw_object(
            put_raw(s3, self.RENAMED),
            {},
            partition(),
            lake=LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket),
            quality=QualityPolicy.from_mapping(policy),
        )
        assert result_of(bare["quality"], "new_columns")["status"] == "skipped"


class TestBadValues:
    @staticmethod
    def with_bad(rows: int, bad: int) -> bytes:
        good = csv(rows - bad).decode().rstrip("\n").split("\n")
        return ("\n".join([*good, *(f"x{i},not-a-number" for i in range(bad))]) + "\n").encode()

    def test_fail_keeps_the_first_bad_row_error(self, s3: LocalS3) -> None:
        land(s3, csv(20))
        before = live(s3)
        from compliance_exports.landing.errors import BadRowError

        with pytest.raises(BadRowError, match="not-a-number"):
            land(s3, self.with_bad(10, 1), {"bad_values": "fail"})
        assert live(s3) == before

    def test_quarantine_within_the_share_warns(self, s3: LocalS3) -> None:
        result = land(
            s3, self.with_bad(100, 2), {"bad_values": "quarantine", "max_quarantined_share": 0.05}
        )
        found = result_of(result["quality"], "bad_values")
        assert found == {
            "check": "bad_values",
            "status": "warn",
            "detail": "2 of 100 rows quarantined (2.00%; limit 5.00%)",
        }
        assert (result["rows"], result["rejected_rows"]) == (98, 2)
        assert result["quarantine_uri"]

    def test_quarantine_over_the_share_fails(self, s3: LocalS3) -> None:
        land(s3, csv(20))
        before = live(s3)
        with pytest.raises(QualityGateError, match=r"2 of 100 rows quarantined \(2.00%; limit 1"):
            land(s3, self.with_bad(100, 2), {"bad_values": "quarantine"})  # default 1%
        assert live(s3) == before
        assert not s3.keys("quarantine/"), "the refused run's rejected rows are not published"

    def test_quarantine_without_bad_rows_passes(self, s3: LocalS3) -> None:
        result = land(s3, csv(10), {"bad_values": "quarantine"})
        assert result_of(result["quality"], "bad_values")["status"] == "pass"

    def test_vendor_rows_counts_the_quarantined_rows(self, s3: LocalS3) -> None:
        policy = {"bad_values": "quarantine", "max_quarantined_share": 0.5, "vendor_rows": "fail"}
        result = land(s3, self.with_bad(10, 1), policy, vendor_rows=10)
        assert result_of(result["quality"], "vendor_rows") == {
            "check": "vendor_rows",
            "status": "pass",
            "detail": "9 rows landed + 1 quarantined, as the vendor reported",
        }


class TestPrimaryKey:
    DUPES = b"id,score\n0001,1\n0002,2\n0001,3\n0003,4\n0002,5\n0001,6\n"

    def test_fail_by_default_with_a_key_naming_duplicates(self, s3: LocalS3) -> None:
        land(s3, csv(20))
        before = live(s3)
        with pytest.raises(QualityGateError) as failed:
            land(s3, self.DUPES, primary_key=("id",))  # no mode given: fail with a key
        assert "2 duplicate key value(s) (3 extra rows): id='0001' (x3), id='0002' (x2)" in str(
            failed.value
        )
        assert live(s3) == before

    def test_duplicates_across_parts_and_composite_keys(self, s3: LocalS3) -> None:
        from compliance_exports.landing.quality import duplicate_keys

        # many rows: several row groups / parts would still be combined
        content = csv(5000) + b"0042,0\n"
        result = land(s3, content, {"primary_key_unique": "warn"}, primary_key=("id", "score"))
        found = result_of(result["quality"], "primary_key_unique")
        assert found["status"] == "warn"
        assert found["detail"] == (
            "1 duplicate key value(s) (1 extra rows): (id='0042', score=0) (x2)"
        )
        assert duplicate_keys([], ("id",)) is None

    def test_many_duplicates_name_a_few_and_count_the_rest(self, s3: LocalS3) -> None:
        content = csv(10) + csv(10).split(b"\n", 1)[1]
        result = land(s3, content, {"primary_key_unique": "warn"}, primary_key=("id",))
        detail = result_of(result["quality"], "primary_key_unique")["detail"]
        assert detail.startswith("10 duplicate key value(s) (10 extra rows): id='0000' (x2), ")
        assert detail.endswith("id='0004' (x2) and 5 more")

    def test_null_keys_fail(self, s3: LocalS3) -> None:
        content = b"id,score\n0001,1\n,2\n"
        with pytest.raises(QualityGateError, match="1 row"):
            land(s3, content, {"primary_key_unique": "fail"}, primary_key=("id",))

    def test_unique_passes_and_no_key_is_off(self, s3: LocalS3) -> None:
        result = land(s3, csv(50), {"primary_key_unique": "fail"}, primary_key=("id",))
        found = result_of(result["quality"], "primary_key_unique")
        assert found == {
            "check": "primary_key_unique",
            "status": "pass",
            "detail": "(id) is unique across 50 rows",
        }
        assert QualityPolicy().primary_key_mode(()).value == "off"
        result = land(s3, csv(5), {"primary_key_unique": "fail"})
        assert result_of(result["quality"], "primary_key_unique")["status"] == "skipped"


def test_default_policy_and_attach_evidence_carries_quality_over(s3: LocalS3) -> None:
    """The defaults (no ``quality`` given): empty warns, bad values fail, ...; a later
    evidence version copies the live manifest's quality unchanged."""
    result = land_raw_object(
        put_raw(s3, csv(0)),
        SCHEMA,
        partition(),
        lake=LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket),
    )
    assert [(r["check"], r["status"]) for r in result["quality"]] == [
        ("empty", "warn"),
        ("vendor_rows", "skipped"),
        ("trend", "skipped"),
        ("missing_columns", "pass"),
        ("new_columns", "pass"),
        ("bad_values", "pass"),
    ]
    first = live(s3)
    pdf = put_raw(s3, b"%PDF-1.4 evidence")
    attach_evidence(partition(), [pdf], lake=LakeOptions(aws_conn_id=s3.conn_id, bucket=s3.bucket))
    second = live(s3)
    assert second["version"] != first["version"]
    assert second["quality"] == first["quality"]


# --------------------------------------------------------------------------- registry

REGISTRY_ENTRY = {
    "vendor": "oleria",
    "kind": "windowed",
    "schedule": "0 0 * * *",
    "oleria": {"context": "ilmEmployeeEvents", "window_field": "createdAt"},
    "schema": {"id": "string", "score": "int64"},
}


def registry(quality: Any = None, defaults: Any = None, **entry: Any) -> Any:
    own = {**REGISTRY_ENTRY, **entry}
    if quality is not None:
        own["quality"] = quality
    document: dict[str, Any] = {"exports": {"events": own}}
    if defaults is not None:
        document["defaults"] = {"quality": defaults}
    return parse_registry(document, "exports.yaml").get("events")


class TestRegistry:
    def test_defaults(self) -> None:
        assert registry().quality == QualityPolicy()
        assert QualityPolicy().describe() == {
            "empty": "warn",
            "vendor_rows": "fail",
            "trend": "warn",
            "missing_columns": "warn",
            "new_columns": "warn",
            "bad_values": "fail",
            "trend_days": 7,
            "trend_band": [0.5, 2.0],
            "max_quarantined_share": 0.01,
        }

    def test_entry_overrides_defaults_key_by_key(self) -> None:
        policy = registry(
            {"empty": "fail", "trend_band": [0.8, 1.25]},
            {"empty": "off", "new_columns": "fail", "trend_days": 14},
            primary_key=["id"],
        ).quality
        assert (policy.empty, policy.new_columns, policy.trend_days) == ("fail", "fail", 14)
        assert policy.trend_band == (0.8, 1.25)
        assert policy.missing_columns == "warn"
        assert policy.primary_key_unique is None

    def test_yaml_off_is_off(self) -> None:
        import yaml

        policy = registry(yaml.safe_load("{empty: off, bad_values: quarantine}")).quality
        assert (policy.empty, policy.bad_values) == ("off", "quarantine")

    @pytest.mark.parametrize(
        ("quality", "message"),
        [
            ({"empty": "loud"}, "exports.events.quality.empty: 'loud' is not one of off | warn"),
            (
                {"bad_values": "warn"},
                "exports.events.quality.bad_values: 'warn' is not one of fail | quarantine",
            ),
            ({"trend_days": 0}, "exports.events.quality.trend_days: 0 is not a count >= 1"),
            ({"trend_band": [2, 1]}, "exports.events.quality.trend_band: [2, 1] is not [low,"),
            ({"trend_band": 0.5}, "exports.events.quality.trend_band: 0.5 is not"),
            (
                {"max_quarantined_share": 1.5},
                "exports.events.quality.max_quarantined_share: 1.5 is not a share from 0 to 1",
            ),
            ({"emtpy": "warn"}, "exports.events.quality.emtpy: not a check or setting"),
            ("strict", "exports.events.quality: 'strict' is not a mapping of checks"),
        ],
    )
    def test_errors_name_the_field(self, quality: Any, message: str) -> None:
        with pytest.raises(RegistryError) as error:
            registry(quality)
        assert str(error.value).startswith(f"exports.yaml: {message}")

    def test_a_bad_default_is_reported_too(self) -> None:
        with pytest.raises(RegistryError, match=r"defaults\.quality: 'x' is not a mapping"):
            registry(defaults="x")
        with pytest.raises(RegistryError, match=r"exports\.events\.quality\.trend: 'sometimes'"):
            registry(defaults={"trend": "sometimes"})
