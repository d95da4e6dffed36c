"""``verify``: the auditor's check of the lake against its manifests, through real S3.

Partitions are written as landing publishes them (tests/verify/lake.py) to the local S3
server, then verified with :func:`verify_exports` or the CLI (a subprocess, as an auditor
runs it). The read-only test runs its own moto server with IAM enforcement switched on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compliance_exports import verify as verify_module
from compliance_exports.verify import (
    FAILED,
    GAP,
    NOT_RUN,
    OK,
    WARNING,
    PartitionCheck,
    VerifyReport,
    check_pdf_windows,
    verify_exports,
)
from tests.conftest import REPO, LocalS3
from tests.iam_s3 import read_only_reader
from tests.lake_checks import as_version_1
from tests.verify.lake import (
    AUDIT,
    DAY,
    PDF_SNAPSHOT,
    SNAPSHOT,
    WINDOWED,
    Lake,
    day_windows,
    registry,
    window,
    write_registry,
)

pytestmark = pytest.mark.integration

ENTRIES = registry()


def entry(name: str) -> Any:
    return ENTRIES.get(name)


@pytest.fixture
def lake(s3: LocalS3) -> Lake:
    return Lake(s3.client(), s3.bucket)


def verify_one(s3: LocalS3, name: str, day: dt.date = DAY) -> PartitionCheck:
    report = verify_exports([entry(name)], day, day, s3.client())
    (check,) = report.partitions
    return check


def only_problem(check: PartitionCheck) -> str:
    assert check.status == FAILED, check
    assert len(check.problems) == 1, check.problems
    return check.problems[0]


# --- a sound lake ------------------------------------------------------------------------


def test_an_intact_lake_verifies_ok(s3: LocalS3, lake: Lake) -> None:
    audit = lake.land(entry(AUDIT), rejected_rows=2)
    lake.land(entry(WINDOWED))
    lake.land(entry(SNAPSHOT))
    lake.land(entry(PDF_SNAPSHOT))
    names = [AUDIT, WINDOWED, SNAPSHOT, PDF_SNAPSHOT]

    report = verify_exports([entry(n) for n in names], DAY, DAY, s3.client())

    assert report.ok
    by_export = {check.export: check for check in report.partitions}
    assert [check.export for check in report.partitions] == names
    for check in report.partitions:
        assert (check.status, check.problems, check.warnings) == (OK, [], []), check
    # live manifest + its copy + raw + 2 PDFs + rejected rows + 2 parts
    assert by_export[AUDIT].objects == 8
    assert by_export[AUDIT].rows == 40
    assert by_export[AUDIT].version == audit["version"]
    assert by_export[PDF_SNAPSHOT].objects == 3  # manifest, copy, the PDF original
    assert by_export[PDF_SNAPSHOT].rows == 0
    document = report.to_dict()
    assert document["ok"] is True
    assert (document["from"], document["to"]) == (DAY.isoformat(), DAY.isoformat())
    assert document["summary"] == {
        "partitions": 4, "exports": 4, "ok": 4, "warning": 0, "failed": 0, "gap": 0,
        "not_run": 0, "objects": 8 + 5 + 5 + 3,
    }  # fmt: skip
    assert set(document["partitions"][0]) >= {
        "export", "day", "status", "rows", "version", "objects", "problems", "warnings",
    }  # fmt: skip
    assert "4 ok, 0 warning, 0 failed, 0 gap, 0 not run" in report.table()


def test_a_footer_larger_than_the_kept_tail_is_read_by_a_ranged_get(
    s3: LocalS3, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.land(entry(WINDOWED), part_rows=(7, 5, 9))
    monkeypatch.setattr(verify_module, "_TAIL", 16)  # the footer cannot be in 16 bytes
    calls: list[dict[str, Any]] = []
    client = s3.client()
    client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: calls.append(params)
    )

    check = verify_exports([entry(WINDOWED)], DAY, DAY, client).partitions[0]

    assert (check.status, check.problems) == (OK, [])
    ranged = [call for call in calls if "Range" in call.get("headers", {})]
    assert len(ranged) == 3  # one per part: the footer, pinned to the object just hashed
    assert all("If-Match" in call["headers"] for call in ranged)


# --- tampering and missing objects ------------------------------------------------------


def test_a_tampered_raw_object_fails_naming_it(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(AUDIT))
    raw, forged = manifest["raw"], b"event_id,n\nforged,1\n"
    lake.put(raw["key"], forged)

    check = verify_one(s3, AUDIT)

    assert check.status == FAILED
    assert check.problems == [
        f"raw object {raw['uri']} is 20 bytes, the manifest records {raw['size']}",
        f"raw object {raw['uri']} has sha256 {hashlib.sha256(forged).hexdigest()}, "
        f"the manifest records {raw['sha256']}",
    ]


def test_a_tampered_pdf_of_the_same_size_fails_on_its_hash(s3: LocalS3, lake: Lake) -> None:
    pdf = lake.land(entry(AUDIT))["evidence"][1]
    original = s3.read(pdf["key"])
    lake.put(pdf["key"], original[:-2] + b"X\n")

    problem = only_problem(verify_one(s3, AUDIT))

    assert problem.startswith(f"pdf evidence {pdf['uri']} has sha256 ")
    assert problem.endswith(f"the manifest records {pdf['sha256']}")


def test_missing_objects_fail_each_by_name(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(AUDIT), rejected_rows=3)
    part, rejected = manifest["parts"][1], manifest["rejected"]
    client = s3.client()
    client.delete_object(Bucket=s3.bucket, Key=part["key"])
    client.delete_object(Bucket=s3.bucket, Key=rejected["key"])

    check = verify_one(s3, AUDIT)

    assert check.status == FAILED
    assert check.problems == [
        f"rejected rows {rejected['uri']} is missing (NoSuchKey)",
        f"part {part['uri']} is missing (NoSuchKey)",
    ]


def test_a_part_whose_footer_disagrees_with_the_manifest_fails(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED), part_rows=(20, 20))
    manifest["parts"][0]["rows"] = 21  # the manifest lies about one part...
    manifest["rows"] = 41  # ...and consistently about the total
    lake.publish(entry(WINDOWED), manifest)

    problem = only_problem(verify_one(s3, WINDOWED))

    assert problem == (
        f"part {manifest['parts'][0]['uri']}: its footer says 20 rows, the manifest 21"
    )


def test_parts_that_do_not_sum_to_the_rows_fail(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED), part_rows=(20, 20))
    manifest["rows"] = 45
    lake.publish(entry(WINDOWED), manifest)

    assert only_problem(verify_one(s3, WINDOWED)) == "the parts hold 40 rows, the manifest says 45"


def test_a_part_that_is_not_parquet_fails(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED), part_rows=(4,))
    part = manifest["parts"][0]
    forged = lake.obj(part["key"], b"event_id\nev-0\nev-1\nev-2\nev-3\n")
    part.update(sha256=forged["sha256"], bytes=forged["size"])
    lake.publish(entry(WINDOWED), manifest)

    problem = only_problem(verify_one(s3, WINDOWED))

    assert problem == f"part {part['uri']}: not a Parquet file (no PAR1 at its end)"


# --- days without a manifest ------------------------------------------------------------


def test_a_deleted_day_of_a_windowed_export_is_a_gap(s3: LocalS3, lake: Lake) -> None:
    days = [DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)]
    for day in days:
        lake.land(entry(WINDOWED), day)
    missing = entry(WINDOWED).partition(days[1])
    s3.client().delete_object(Bucket=s3.bucket, Key=missing.manifest_key)

    report = verify_exports([entry(WINDOWED)], days[0], days[-1], s3.client())

    assert [check.status for check in report.partitions] == [OK, GAP, OK]
    assert not report.ok
    gap = report.partitions[1]
    assert gap.problems == [
        f"no manifest at s3://{s3.bucket}/{missing.manifest_key}: the day was never "
        "published (a windowed export has a partition for every day)"
    ]
    assert (gap.rows, gap.version, gap.objects) == (None, None, 0)


def test_a_snapshot_day_a_run_planned_but_never_published_is_a_gap(s3: LocalS3, lake: Lake) -> None:
    planned, unplanned = DAY, DAY + dt.timedelta(days=1)
    record = lake.record_run(entry(SNAPSHOT), planned)

    report = verify_exports([entry(SNAPSHOT)], planned, unplanned, s3.client())

    gap, not_run = report.partitions
    assert gap.status == GAP
    assert gap.problems == [
        f"a run planned this day (s3://{s3.bucket}/{record}) but no manifest was published "
        f"at s3://{s3.bucket}/{entry(SNAPSHOT).partition(planned).manifest_key}"
    ]
    assert (not_run.status, not_run.problems, not_run.warnings) == (NOT_RUN, [], [])
    assert not report.ok


def test_snapshot_days_never_run_are_not_problems(s3: LocalS3, lake: Lake) -> None:
    lake.land(entry(SNAPSHOT), DAY)
    report = verify_exports(
        [entry(SNAPSHOT)], DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1), s3.client()
    )
    assert [check.status for check in report.partitions] == [NOT_RUN, OK, NOT_RUN]
    assert report.ok


# --- manifests ---------------------------------------------------------------------------


def test_a_manifest_that_breaks_the_schema_fails_naming_the_errors(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED))
    manifest["raw"]["sha256"] = "not-a-hash"
    del manifest["object_lock"]
    lake.publish(entry(WINDOWED), manifest)

    check = verify_one(s3, WINDOWED)

    assert check.status == FAILED
    (problem,) = check.problems
    uri = f"s3://{s3.bucket}/{entry(WINDOWED).partition(DAY).manifest_key}"
    assert problem.startswith(f"the manifest {uri} does not match the manifest schema (2 error(s))")
    assert "(top): 'object_lock' is a required property" in problem
    assert "raw/sha256: 'not-a-hash' does not match" in problem
    assert check.warnings == ["objects not checked: the manifest does not match its schema"]


def test_a_manifest_that_is_not_json_fails(s3: LocalS3, lake: Lake) -> None:
    lake.put(entry(WINDOWED).partition(DAY).manifest_key, b"{not json")
    problem = only_problem(verify_one(s3, WINDOWED))
    assert "is not JSON" in problem


def test_the_version_copy_must_exist_and_equal_the_live_manifest(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED))
    partition = entry(WINDOWED).partition(DAY)
    copy_key = partition.version_key(manifest["version"])
    copy_uri = f"s3://{s3.bucket}/{copy_key}"

    # the same JSON, written differently: still the same version
    lake.put(copy_key, json.dumps(manifest, separators=(",", ":")).encode())
    assert verify_one(s3, WINDOWED).status == OK

    lake.put(copy_key, json.dumps({**manifest, "rows": 1}).encode())
    assert only_problem(verify_one(s3, WINDOWED)) == (
        f"the copy {copy_uri} of version {manifest['version']} differs from the live manifest"
    )

    s3.client().delete_object(Bucket=s3.bucket, Key=copy_key)
    assert only_problem(verify_one(s3, WINDOWED)) == (
        f"the copy {copy_uri} of version {manifest['version']} is missing"
    )


def test_a_manifest_in_the_wrong_partition_fails(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED), DAY, publish=False)
    later = DAY + dt.timedelta(days=1)
    lake.publish(entry(WINDOWED), manifest, day=later)  # a copy of one day put in another

    problem = only_problem(verify_one(s3, WINDOWED, later))

    assert problem == (
        f"the manifest names day '{DAY}', but it lies in the partition of day '{later}'"
    )


# --- audit PDFs --------------------------------------------------------------------------


def test_an_export_that_records_pdfs_fails_without_them(s3: LocalS3, lake: Lake) -> None:
    lake.land(entry(AUDIT), windows=[])
    problem = only_problem(verify_one(s3, AUDIT))
    assert problem == "no audit PDFs recorded (the export records PDFs for every partition)"


def test_overlapping_pdf_windows_fail_naming_both(s3: LocalS3, lake: Lake) -> None:
    windows = [
        window(f"{DAY}T00:00:00.000Z", f"{DAY}T06:00:00.000Z", 30),  # one ms too far
        window(f"{DAY}T06:00:00.000Z", f"{DAY}T23:59:59.999Z", 10),
    ]
    manifest = lake.land(entry(AUDIT), windows=windows)

    problem = only_problem(verify_one(s3, AUDIT))

    first, second = (item["uri"] for item in manifest["evidence"])
    assert problem == (
        f"PDF windows overlap: {first} [{DAY}T00:00:00.000Z..{DAY}T06:00:00.000Z] "
        f"and {second} [{DAY}T06:00:00.000Z..{DAY}T23:59:59.999Z]"
    )


def test_windows_of_one_instant_split_by_filters(s3: LocalS3, lake: Lake) -> None:
    """A crowded instant split by filters: windows apart in one dimension both filter do
    not overlap; windows sharing a value in every dimension both filter do."""
    noon = f"{DAY}T12:00:00.000Z"
    split = [
        window(f"{DAY}T00:00:00.000Z", f"{DAY}T11:59:59.999Z", 10),
        window(noon, noon, 10, {"event_type": ["login", "logout"]}),
        window(noon, noon, 5, {"event_type": ["grant"], "sub_type": ["role"]}),
        window(noon, noon, 5, {"event_type": ["grant"], "sub_type": ["admin", "role"]}),
        window(f"{DAY}T12:00:00.001Z", f"{DAY}T23:59:59.999Z", 10),
    ]
    manifest = lake.land(entry(AUDIT), windows=split)

    problem = only_problem(verify_one(s3, AUDIT))

    grant, role = manifest["evidence"][2]["uri"], manifest["evidence"][3]["uri"]
    assert problem == (
        f"PDF windows overlap: {grant} [{noon}..{noon} event_type=grant sub_type=role] "
        f"and {role} [{noon}..{noon} event_type=grant sub_type=admin,role]"
    )


def test_a_hole_between_pdf_windows_fails_naming_the_span(s3: LocalS3, lake: Lake) -> None:
    windows = [
        window(f"{DAY}T00:00:00.000Z", f"{DAY}T05:59:59.998Z", 30),  # one ms short
        window(f"{DAY}T06:00:00.000Z", f"{DAY}T23:59:59.000Z", 10),  # ends early
    ]
    lake.land(entry(AUDIT), windows=windows)

    check = verify_one(s3, AUDIT)

    assert check.status == FAILED
    assert check.problems == [
        f"PDF windows leave {DAY}T05:59:59.999Z..{DAY}T05:59:59.999Z uncovered",
        f"PDF windows leave {DAY}T23:59:59.001Z..{DAY}T23:59:59.999Z uncovered",
    ]


def test_pdf_events_must_sum_to_the_days_rows(s3: LocalS3, lake: Lake) -> None:
    lake.land(entry(AUDIT), windows=day_windows(DAY, 30, 9))  # the day has 40 rows
    assert only_problem(verify_one(s3, AUDIT)) == "PDFs hold 39 events, the day has 40"


def test_pdf_counts_unknown_skip_the_sum_with_a_warning(s3: LocalS3, lake: Lake) -> None:
    windows = [
        window(f"{DAY}T00:00:00.000Z", f"{DAY}T05:59:59.999Z", None),
        window(f"{DAY}T06:00:00.000Z", f"{DAY}T23:59:59.999Z", 3),
    ]
    lake.land(entry(AUDIT), windows=windows)

    check = verify_one(s3, AUDIT)

    assert (check.status, check.problems) == (WARNING, [])
    assert check.warnings == ["PDF event counts not checked: 1 PDF(s) record no expected_events"]


def test_pdf_windows_pure_rules() -> None:
    interval = {"start": f"{DAY}T00:00:00+00:00", "end": f"{DAY + dt.timedelta(days=1)}T00:00Z"}

    def pdf(start: str, end: str, events: int | None = 1, **filters: list[str]) -> Any:
        return {"uri": f"s3://b/{start}", "window": window(start, end, events, filters)}

    # one window for the whole day, counted by the window's own expected_events
    whole = {"uri": "s3://b/w", "window": window(f"{DAY}T00:00Z", f"{DAY}T23:59:59.999Z", 7)}
    assert check_pdf_windows([whole], interval, 7) == ([], [])
    # windows given in any order; a dimension filtered in only one of two windows intersects
    t = f"{DAY}T08:00:00.000Z"
    problems, _ = check_pdf_windows(
        [
            pdf(f"{DAY}T08:00:00.001Z", f"{DAY}T23:59:59.999Z"),
            pdf(t, t, event_type=["a"]),
            pdf(f"{DAY}T00:00:00.000Z", f"{DAY}T07:59:59.999Z"),
            pdf(t, t, sub_type=["x"]),
        ],
        interval,
        4,
    )
    assert problems == [f"PDF windows overlap: s3://b/{t} [{t}..{t} event_type=a] and "
                        f"s3://b/{t} [{t}..{t} sub_type=x]"]  # fmt: skip
    # nothing covers the start, a window ends before it starts, one reaches past the day
    problems, warnings = check_pdf_windows(
        [
            pdf(f"{DAY}T01:00:00.000Z", f"{DAY + dt.timedelta(days=1)}T00:00:00.000Z"),
            pdf(f"{DAY}T05:00:00.000Z", f"{DAY}T04:00:00.000Z"),
            {"uri": "s3://b/nowindow", "expected_events": 1},
        ],
        interval,
        1,
    )
    assert problems == [
        f"PDF window s3://b/{DAY}T05:00:00.000Z [{DAY}T05:00:00.000Z..{DAY}T04:00:00.000Z] "
        "ends before it starts",
        "PDF s3://b/nowindow records no window",
        f"PDF windows leave {DAY}T00:00:00.000Z..{DAY}T00:59:59.999Z uncovered",
    ]
    assert warnings[0].startswith("PDF window(s) reach outside the data interval")
    # the PDFs hold the rows quarantined at landing too: 5 landed + 2 rejected = 7
    assert check_pdf_windows([whole], interval, 5, rejected_rows=2) == ([], [])
    problems, _ = check_pdf_windows([whole], interval, 4, rejected_rows=2)
    assert problems == ["PDFs hold 7 events, the day has 6 (4 landed, 2 rejected)"]


# --- a versioned (Object Lock) bucket ---------------------------------------------------


@pytest.fixture
def locked_lake(s3: LocalS3) -> Iterator[Lake]:
    """A bucket with Object Lock (so versioning) on the local S3 server."""
    bucket = f"locked-lake-{uuid.uuid4().hex[:8]}"
    client = s3.client()
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    yield Lake(client, bucket)
    listing = client.list_object_versions(Bucket=bucket)
    for item in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        client.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    client.delete_bucket(Bucket=bucket)


def test_a_versioned_bucket_checks_the_recorded_versions(s3: LocalS3, locked_lake: Lake) -> None:
    lake = locked_lake
    audit = registry(lake.bucket).get(AUDIT)
    manifest = lake.land(audit)
    raw, pdf, part = manifest["raw"], manifest["evidence"][0], manifest["parts"][0]
    assert all(item["version_id"] for item in [raw, pdf, part])
    assert verify_exports([audit], DAY, DAY, s3.client()).partitions[0].status == OK

    # Later writes to recorded keys: a new version of the raw CSV, a delete marker on a PDF
    newer = lake.put(raw["key"], b"event_id,n\nforged,1\n")
    s3.client().delete_object(Bucket=lake.bucket, Key=pdf["key"])

    check = verify_exports([audit], DAY, DAY, s3.client()).partitions[0]

    assert (check.status, check.problems) == (WARNING, [])
    assert check.warnings == [
        f"a later write made a newer version of {raw['uri']} ({newer}); "
        f"the recorded version {raw['version_id']} is intact",
        f"{pdf['uri']} was deleted later (its current version is a delete marker); "
        f"the recorded version {pdf['version_id']} is intact",
    ]
    assert check.objects == 7

    # A manifest naming another version than the one landed fails, as does a lost version
    other = lake.put(part["key"], b"PAR1 forged PAR1")
    manifest["parts"][0]["version_id"] = other
    manifest["raw"]["version_id"] = "no-such-version"
    lake.publish(audit, manifest)
    check = verify_exports([audit], DAY, DAY, s3.client()).partitions[0]
    assert check.status == FAILED
    assert check.problems[0].startswith(
        f"raw object {raw['uri']} (version no-such-version) is missing ("
    )
    assert check.problems[1:] == [
        f"part {part['uri']} (version {other}) is 16 bytes, the manifest records {part['bytes']}",
        f"part {part['uri']} (version {other}) has sha256 "
        f"{hashlib.sha256(b'PAR1 forged PAR1').hexdigest()}, the manifest records {part['sha256']}",
    ]


# --- the command ---------------------------------------------------------------------


def cli_env(endpoint: str, keys: tuple[str, str] = ("testing", "testing")) -> dict[str, str]:
    key, secret = keys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COMPLIANCE_"))}
    env.update(
        PYTHONPATH=".",
        AWS_ACCESS_KEY_ID=key,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,  # boto3's own variable; tests also pass --endpoint-url
    )
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compliance_exports", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_command_prints_a_table_and_exits_0_when_intact(s3: LocalS3, lake: Lake) -> None:
    lake.land(entry(AUDIT))
    lake.land(entry(SNAPSHOT))
    env = cli_env("http://127.0.0.1:9")  # wrong on purpose: --endpoint-url wins

    done = run_cli(
        "verify", "--from", DAY.isoformat(), "--to", (DAY + dt.timedelta(days=1)).isoformat(),
        "--export", AUDIT, "--export", SNAPSHOT, "--endpoint-url", s3.endpoint_url, env=env,
    )  # fmt: skip

    assert done.returncode == 1, done.stderr  # the audit export's second day is missing
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["EXPORT", "DAY", "STATUS", "ROWS", "OBJECTS", "FIRST", "PROBLEM"]
    assert lines[1].split()[:5] == [AUDIT, DAY.isoformat(), "ok", "40", "7"]
    assert lines[2].split()[:5] == [AUDIT, str(DAY + dt.timedelta(days=1)), "gap", "-", "0"]
    assert lines[3].split()[:5] == [SNAPSHOT, DAY.isoformat(), "ok", "40", "5"]
    assert lines[4].split()[:3] == [SNAPSHOT, str(DAY + dt.timedelta(days=1)), "not_run"]
    assert lines[-1] == (
        f"4 partition(s) of 2 export(s) {DAY}..{DAY + dt.timedelta(days=1)}: 2 ok, 0 warning, "
        "0 failed, 1 gap, 1 not run; 12 object(s) checked. INTEGRITY PROBLEMS FOUND"
    )

    done = run_cli(
        "verify", "--from", DAY.isoformat(), "--export", AUDIT, "--export", SNAPSHOT,
        "--endpoint-url", s3.endpoint_url, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("OK: no integrity problem")


def test_the_command_prints_json_and_exits_1_on_a_problem(s3: LocalS3, lake: Lake) -> None:
    manifest = lake.land(entry(WINDOWED))
    lake.put(manifest["parts"][0]["key"], b"truncated")

    done = run_cli(
        "verify", "--from", DAY.isoformat(), "--export", WINDOWED, "--json",
        env=cli_env(s3.endpoint_url),  # the endpoint from AWS_ENDPOINT_URL alone
    )  # fmt: skip

    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is False
    assert (document["from"], document["to"]) == (DAY.isoformat(), DAY.isoformat())
    (partition,) = document["partitions"]
    assert partition["export"] == WINDOWED
    assert partition["status"] == "failed"
    assert partition["version"] == manifest["version"]
    assert partition["rows"] == 40
    part = manifest["parts"][0]
    assert partition["problems"][0] == (
        f"part {part['uri']} is 9 bytes, the manifest records {part['bytes']}"
    )
    assert document["summary"]["failed"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-31"], "argument --from: '2026-11-31' is not a date (YYYY-MM-DD)"),
        (["--from", "2026-11-20", "--to", "yesterday"], "argument --to: 'yesterday' is not a date"),
        (["--from", "2026-11-20", "--to", "2026-11-19"], "--to 2026-11-19 is before --from"),
        (["--from", "2026-11-20", "--export", "nope"], "--export: unknown export 'nope'; the"),
        (["--to", "2026-11-20"], "the following arguments are required: --from"),
    ],
)  # fmt: skip
def test_bad_usage_exits_2_naming_the_problem(args: list[str], message: str) -> None:
    done = run_cli("verify", *args, env=cli_env("http://127.0.0.1:9"))
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_the_command_uses_the_registry_it_is_given(
    s3: LocalS3, locked_lake: Lake, tmp_path: Path
) -> None:
    path = write_registry(tmp_path / "exports.yaml", locked_lake.bucket)
    locked_lake.land(registry(locked_lake.bucket).get(WINDOWED))
    env = cli_env(s3.endpoint_url)

    done = run_cli("verify", "--from", str(DAY), "--export", WINDOWED, "--registry", str(path),
                   "--json", env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["partitions"][0]["manifest"].startswith(
        f"s3://{locked_lake.bucket}/"
    )

    env["COMPLIANCE_EXPORTS_REGISTRY"] = str(path)
    done = run_cli("verify", "--from", str(DAY), "--export", WINDOWED, env=env)
    assert done.returncode == 0, done.stdout + done.stderr

    (tmp_path / "bad.yaml").write_text("exports: [1, 2]")
    done = run_cli("verify", "--from", str(DAY), "--registry", str(tmp_path / "bad.yaml"), env=env)
    assert done.returncode == 2
    assert "--registry:" in done.stderr


def test_bad_credentials_stop_verify_with_2(s3: LocalS3) -> None:
    """Not every partition 'failed': verify could not run at all, and says why."""
    done = run_cli(
        "verify", "--from", str(DAY), "--export", WINDOWED,
        env=cli_env("http://127.0.0.1:9"),  # nothing listens there
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("verify could not run: cannot use S3:")


# --- read-only credentials, enforced ---------------------------------------------------


def test_verify_needs_only_read_access(iam_s3: str) -> None:

    admin = LocalS3(endpoint_url=iam_s3, bucket="compliance-lake")
    admin_client = admin.client()
    admin_client.create_bucket(Bucket=admin.bucket, ObjectLockEnabledForBucket=True)
    lake = Lake(admin_client, admin.bucket)
    audit = lake.land(entry(AUDIT), rejected_rows=1)
    lake.land(entry(WINDOWED), DAY + dt.timedelta(days=1))
    lake.put(audit["raw"]["key"], b"a later write")  # head of the current version: allowed
    lake.record_run(entry(SNAPSHOT))
    reader = read_only_reader(iam_s3, admin.bucket)
    env = cli_env(iam_s3, (reader.access_key, reader.secret_key))

    done = run_cli(
        "verify", "--from", str(DAY), "--to", str(DAY + dt.timedelta(days=1)), "--json",
        "--export", AUDIT, "--export", WINDOWED, "--export", SNAPSHOT, env=env,
    )  # fmt: skip

    document = json.loads(done.stdout)
    statuses = [(p["export"], p["day"], p["status"]) for p in document["partitions"]]
    assert statuses == [
        (AUDIT, str(DAY), WARNING),  # the later write, read via GetObjectVersion + head
        (AUDIT, str(DAY + dt.timedelta(days=1)), GAP),
        (WINDOWED, str(DAY), GAP),
        (WINDOWED, str(DAY + dt.timedelta(days=1)), OK),
        (SNAPSHOT, str(DAY), GAP),  # found by listing the run records
        (SNAPSHOT, str(DAY + dt.timedelta(days=1)), NOT_RUN),
    ]
    assert done.returncode == 1
    assert not any("AccessDenied" in p for part in document["partitions"] for p in part["problems"])

    done = run_cli("verify", "--from", str(DAY), "--export", AUDIT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr

    # the admin's keys are unknown to the enforcing server: verify says it cannot run
    done = run_cli("verify", "--from", str(DAY), "--export", AUDIT, env=cli_env(iam_s3))
    assert done.returncode == 2
    assert "InvalidAccessKeyId" in done.stderr


def test_report_without_partitions_is_ok() -> None:
    report = VerifyReport([], DAY, DAY)
    assert report.ok
    assert report.table().endswith("0 object(s) checked. OK: no integrity problem")


def test_a_version_1_manifest_is_checked_as_far_as_it_goes(s3: LocalS3, lake: Lake) -> None:
    """A day landed by the release before evidence versions: its original is re-hashed and
    its parts counted, with a warning that it has no version copy, version ids or part
    digests; a tampered original still fails."""
    manifest = lake.land(entry(WINDOWED))
    partition = entry(WINDOWED).partition(DAY)
    lake.put(partition.manifest_key, json.dumps(as_version_1(manifest)).encode())

    check = verify_one(s3, WINDOWED)
    assert check.status == WARNING, check
    assert "version 1 manifest" in check.warnings[0]
    assert check.objects == 1 + 1 + len(manifest["parts"])  # manifest, raw, parts

    lake.put(manifest["raw"]["key"], b"event_id,n\nforged,1\n")
    check = verify_one(s3, WINDOWED)
    assert check.status == FAILED
    assert all(
        problem.startswith(f"raw object {manifest['raw']['uri']}") for problem in check.problems
    )
