"""Evidence that cannot be silently changed, through real Airflow and the local S3 server.

The real DAG file's DAGs (dag.test()) for a registry of the shipped Oleria and Maxsight
windowed exports with ``verify: true`` (each run ends with the verify task), plus the
Oleria export again in a lock-enabled (hence versioned) bucket with Object Lock and
``keep_versions: 1``. The checks are what an auditor runs: ``verify_exports``, the
function behind ``python -m compliance_exports verify``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.landing.layout import new_token
from compliance_exports.landing.manifest import manifest_problems
from compliance_exports.registry import DEFAULT_REGISTRY, REGISTRY_ENV, load_registry
from compliance_exports.verify import verify_exports
from include.simulators.clock import days_ago
from tests.conftest import REPO, LocalS3
from tests.iam_s3 import read_only_reader

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

DAY = days_ago(3)
OLERIA, MAXSIGHT, LOCKED = "oleria_employee_events", "maxsight_audit_events", "locked_events"
LOCK_BUCKET = "compliance-lake-locked"


def registry_document(**maxsight: Any) -> dict[str, Any]:
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    defaults = {**shipped["defaults"], "retry_delay": "1s", "poll_interval": "1s"}
    defaults["retries"] = 2
    defaults["verify"] = True
    oleria = {**shipped["exports"][OLERIA], "lake": {"keep_versions": 2}}
    audit = copy.deepcopy(shipped["exports"][MAXSIGHT])
    audit["maxsight"].update(maxsight)
    locked = {
        **shipped["exports"][OLERIA],
        "dag": "locked_exports",
        "lake": {
            "bucket": LOCK_BUCKET,
            "keep_versions": 1,
            "object_lock": {"mode": "GOVERNANCE", "days": 1},
        },
    }
    return {"defaults": defaults, "exports": {OLERIA: oleria, MAXSIGHT: audit, LOCKED: locked}}


class Dags:
    """Builds the real DAG file's DAGs from a registry document, keeping that registry
    selected while they run (the trigger form's defaults are read from it)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folder, self.monkeypatch = folder, monkeypatch

    def load(self, document: dict[str, Any]) -> dict[str, Any]:
        from airflow.dag_processing.dagbag import DagBag

        path = self.folder / f"exports-{new_token()}.yaml"
        path.write_text(yaml.safe_dump(document))
        self.monkeypatch.setenv(REGISTRY_ENV, str(path))
        bag = DagBag(dag_folder=str(REPO / "dags" / "compliance_exports.py"))
        assert bag.import_errors == {}
        return dict(bag.dags)


@pytest.fixture
def dags(
    tmp_path: Path, airflow_db: Path, s3: LocalS3, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> Dags:
    client = s3.client()
    # locked objects cannot be emptied out: the lock test reads only its own day's keys
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=LOCK_BUCKET, ObjectLockEnabledForBucket=True)
    return Dags(tmp_path, monkeypatch)


def run(dag: Any, run_for_day: Any, day: dt.date = DAY) -> dict[str, str]:
    dagrun = run_for_day(dag, day)
    states = {ti.task_id.rsplit(".", 1)[-1]: ti.state for ti in dagrun.get_task_instances()}
    states["run"] = dagrun.state
    return states


def live(s3: LocalS3, name: str, day: dt.date = DAY, bucket: str | None = None) -> dict[str, Any]:
    partition = load_registry().get(name).partition(day)
    client = s3.client()
    body = client.get_object(Bucket=bucket or s3.bucket, Key=partition.manifest_key)["Body"]
    manifest: dict[str, Any] = json.loads(body.read())
    assert manifest_problems(manifest) == []
    return manifest


def verify(s3: LocalS3, name: str, first: dt.date = DAY, last: dt.date = DAY) -> Any:
    return verify_exports([load_registry().get(name)], first, last, s3.client())


def test_a_rerun_whose_landing_fails_leaves_the_previous_version_intact_and_verifiable(
    dags: Dags, s3: LocalS3, run_for_day: Any
) -> None:
    document = registry_document()
    states = run(dags.load(document)["oleria_exports"], run_for_day)
    assert (states["run"], states["land"], states["verify"]) == ("success", "success", "success")
    first = live(s3, OLERIA)
    assert first["export"] == OLERIA
    assert first["jobs"][0]["submitted_at"] <= first["jobs"][0]["done_at"]
    assert first["raw"]["downloaded_at"] >= first["jobs"][0]["done_at"]
    assert first["request"]["context"] == "ilmEmployeeEvents"

    # the vendor's data no longer fits the declared types: this rerun's landing fails
    document["exports"][OLERIA]["schema"]["name"] = "int64"
    broken = dags.load(document)["oleria_exports"]
    states = run(broken, run_for_day)
    assert (states["run"], states["land"], states["verify"]) == (
        "failed",
        "failed",
        "upstream_failed",
    )
    assert live(s3, OLERIA) == first, "the live version is the previous one, unchanged"
    report = verify(s3, OLERIA)
    assert report.ok, report.table()
    # the failed rerun's original is kept under its own run-scoped key, beside the first
    partition = load_registry().get(OLERIA).partition(DAY)
    originals = [k for k in s3.keys(partition.raw_prefix) if k.endswith(".csv")]
    assert len(originals) == 2
    assert first["raw"]["key"] in originals

    # retention (keep_versions: 2): two more good runs retire only the oldest version
    document["exports"][OLERIA]["schema"]["name"] = "string"
    fixed = dags.load(document)["oleria_exports"]
    for _ in range(2):
        assert run(fixed, run_for_day)["run"] == "success"
    latest = live(s3, OLERIA)
    kept = [json.loads(s3.read(k)) for k in s3.keys(partition.versions_prefix)]
    assert [v["version"] for v in kept] == [latest["supersedes"], latest["version"]]
    assert first["version"] not in {v["version"] for v in kept}
    assert first["raw"]["key"] not in s3.keys(partition.raw_prefix), "retired with its version"
    named = {part["key"] for version in kept for part in version["parts"]}
    assert {k for k in s3.keys(partition.curated_prefix) if k.endswith(".parquet")} == named
    assert verify(s3, OLERIA).ok


def test_tampering_and_a_deleted_day_are_reported(
    dags: Dags, s3: LocalS3, run_for_day: Any
) -> None:
    built = dags.load(registry_document())["oleria_exports"]
    before = DAY - dt.timedelta(days=1)
    for day in (before, DAY):
        assert run(built, run_for_day, day)["run"] == "success"
    assert verify(s3, OLERIA, before, DAY).ok

    manifest = live(s3, OLERIA)
    s3.client().put_object(
        Bucket=s3.bucket, Key=manifest["raw"]["key"], Body=b"id,name\n1,changed behind our back\n"
    )
    partition = load_registry().get(OLERIA).partition(before)
    s3.client().delete_object(Bucket=s3.bucket, Key=partition.manifest_key)

    report = verify(s3, OLERIA, before, DAY)
    assert not report.ok
    by_day = {check.day: check for check in report.partitions}
    assert by_day[before].status == "gap"
    assert by_day[DAY].status == "failed"
    assert any(manifest["raw"]["uri"] in problem for problem in by_day[DAY].problems)


def test_a_rerun_with_other_pdf_windows_names_only_its_own_pdfs(
    dags: Dags, s3: LocalS3, run_for_day: Any
) -> None:
    wide = dags.load(registry_document(window_limit=5000))["maxsight_exports"]
    assert run(wide, run_for_day)["verify"] == "success"
    first = live(s3, MAXSIGHT)
    narrow = dags.load(registry_document(window_limit=20))["maxsight_exports"]
    assert run(narrow, run_for_day)["verify"] == "success"
    second = live(s3, MAXSIGHT)

    old = {item["key"] for item in first["evidence"]}
    new = [item for item in second["evidence"] if item["kind"] == "pdf"]
    assert len(new) > len(old), "a lower limit gives more windows"
    assert not old & {item["key"] for item in new}, "no PDF of the old version is named"
    assert sum(item["expected_events"] for item in new) == second["rows"]
    report = verify(s3, MAXSIGHT)  # no overlap, the day covered, every PDF re-hashed
    assert report.ok, report.table()
    assert all(key in s3.keys("raw/") for key in old), "the old version is kept whole"


def test_on_a_locked_bucket_evidence_cannot_be_deleted_or_changed(
    dags: Dags, s3: LocalS3, run_for_day: Any
) -> None:
    day = days_ago(4)  # a day of its own: locked objects outlive the test
    locked_dag = dags.load(registry_document())["locked_exports"]
    assert run(locked_dag, run_for_day, day)["verify"] == "success"
    manifest = live(s3, LOCKED, day, LOCK_BUCKET)
    raw = manifest["raw"]
    assert raw["version_id"]
    assert all(part["version_id"] for part in manifest["parts"])
    assert manifest["object_lock"]["mode"] == "GOVERNANCE"
    client = s3.client()
    head = client.head_object(Bucket=LOCK_BUCKET, Key=raw["key"], VersionId=raw["version_id"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=LOCK_BUCKET, Key=raw["key"], VersionId=raw["version_id"])

    # a later PUT to the same key makes a new version: the recorded one is intact
    client.put_object(Bucket=LOCK_BUCKET, Key=raw["key"], Body=b"not the evidence\n")
    report = verify(s3, LOCKED, day, day)
    assert report.ok, report.table()
    (check,) = report.partitions
    assert any("newer version" in warning for warning in check.warnings), check.warnings

    # a rerun still works (it never overwrites), and keep_versions: 1 cannot retire the
    # locked first version: it is skipped, not deleted
    assert run(locked_dag, run_for_day, day)["run"] == "success"
    rerun = live(s3, LOCKED, day, LOCK_BUCKET)
    assert rerun["supersedes"] == manifest["version"]
    partition = load_registry().get(LOCKED).partition(day)
    listed = client.list_objects_v2(Bucket=LOCK_BUCKET, Prefix=partition.versions_prefix)
    assert len(listed["KeyCount"] and listed["Contents"]) == 2


def test_verify_needs_only_read_access_to_what_airflow_landed(
    iam_s3: str,
    airflow_db: Path,
    sim: Any,
    run_for_day: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The audit export (CSV, Parquet, PDFs) landed by Airflow with the lake's writer,
    then verified by an auditor allowed only GetObject(Version) and ListBucket(Versions)."""
    writer = LocalS3(endpoint_url=iam_s3, bucket="compliance-lake")
    writer.client().create_bucket(Bucket=writer.bucket)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_LAKE", json.dumps(writer.connection()))
    built = Dags(tmp_path, monkeypatch).load(registry_document(window_limit=20))
    assert run(built["maxsight_exports"], run_for_day)["verify"] == "success"

    auditor = read_only_reader(iam_s3, writer.bucket)
    report = verify_exports([load_registry().get(MAXSIGHT)], DAY, DAY, auditor.client())
    assert report.ok, report.table()
    (check,) = report.partitions
    assert check.objects > 5, "raw CSV, its parts, every PDF and the manifests were read"
