"""The landing task: one raw object in the lake -> one new published partition version.

This is the thin, Airflow-facing entry point (S3 through the amazon provider's
S3Hook); the conversion itself lives in :mod:`compliance_exports.landing.convert`, the
publication and retention of versions in :mod:`compliance_exports.landing.lake`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance_exports import __version__
from compliance_exports.landing.convert import (
    BadRowPolicy,
    ConversionOptions,
    ConversionResult,
    convert_file,
    write_rejected_rows,
)
from compliance_exports.landing.errors import LandingError
from compliance_exports.landing.lake import (
    LakeStore,
    ObjectLock,
    PartitionPublisher,
    ServerSideEncryption,
    StagedPart,
)
from compliance_exports.landing.layout import Partition, new_token, s3_uri
from compliance_exports.landing.manifest import (
    MANIFEST_VERSION,
    LandingResult,
    Manifest,
    PartEntry,
    RejectedEntry,
    day_interval,
    evidence_entry,
    redact,
)
from compliance_exports.landing.parquet import ParquetOptions
from compliance_exports.landing.quality import (
    BadValues,
    Observed,
    QualityPolicy,
    QualityResult,
    earlier_rows,
    evaluate,
    gate,
    log_results,
    warnings_of,
)
from compliance_exports.landing.schema import DatasetSchema, resolve
from compliance_exports.landing.sources import RawFormat, detect_format

log = logging.getLogger(__name__)
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class LakeOptions:
    """Where and how a partition is published: the registry's ``lake`` block."""

    aws_conn_id: str
    bucket: str
    sse: str | None = None
    kms_key_id: str | None = None
    keep_versions: int | None = None  # None: keep every superseded version
    object_lock_mode: str | None = None
    object_lock_days: int | None = None
    progress_interval: float = 10.0

    def store(self) -> LakeStore:
        return LakeStore(
            self.aws_conn_id,
            self.bucket,
            ServerSideEncryption(self.sse, self.kms_key_id),
            ObjectLock.of(self.object_lock_mode, self.object_lock_days),
            self.progress_interval,
        )


def partition_of(raw: Mapping[str, Any], prefix: str = "") -> Partition:
    """The curated partition a raw object belongs to (vendor, dataset, day from the dict)."""
    try:
        return Partition(raw["vendor"], raw["dataset"], dt.date.fromisoformat(raw["day"]), prefix)
    except KeyError as missing:
        raise LandingError(f"raw object has no {missing.args[0]!r}") from None


def land_raw_object(
    raw: Mapping[str, Any],
    schema: DatasetSchema | Mapping[str, str] | None,
    partition: Partition | None = None,
    *,
    lake: LakeOptions,
    prefix: str = "",
    on_bad_rows: BadRowPolicy | str = BadRowPolicy.FAIL,
    max_rejected_rows: int = 10_000,
    data_interval: Mapping[str, str] | None = None,
    parquet: ParquetOptions | None = None,
    evidence: Sequence[Mapping[str, Any]] = (),
    export: str | None = None,
    evidence_expected: Sequence[str] = (),
    quality: QualityPolicy | None = None,
    primary_key: Sequence[str] = (),
) -> LandingResult:
    """Convert ``raw`` (a fetch step's RawObject dict) to Parquet and publish it as the
    partition's new version.

    The previous version stays readable until the switch and is kept afterwards for
    ``lake.keep_versions``; a failure leaves the live version as it was. A PDF is
    evidence: it stays in the raw zone as it came, and the version's manifest (no
    Parquet parts, zero rows) records it with its sha256 and size. ``partition``
    defaults to the raw object's vendor, dataset and day under ``prefix``. ``evidence``
    lists other originals of the partition (e.g. audit PDFs, as RawObject dicts) to
    record in the manifest; ``evidence_expected`` the kinds every partition of the
    export should hold (``verify`` reports a version without them).

    ``quality`` (the registry's policy) is evaluated after the conversion and before
    anything is staged: a ``fail`` raises :class:`~compliance_exports.landing.quality.
    QualityGateError` and publishes nothing; its ``bad_values`` replaces ``on_bad_rows``.
    ``None``: the default checks, with ``on_bad_rows`` as given and no limit on the
    quarantined share. ``primary_key`` is the columns the ``primary_key_unique`` check
    reads. A PDF (evidence only) is not checked.
    """
    started = time.monotonic()
    filename = str(raw.get("filename") or Path(str(raw["key"])).name)
    raw_format = detect_format(filename, raw.get("content_type"))
    declared = (
        schema if isinstance(schema, DatasetSchema) else DatasetSchema.from_mapping(schema or {})
    )
    partition = partition or partition_of(raw, prefix)
    store = lake.store()
    if quality is None:
        quality = QualityPolicy(bad_values=BadValues(on_bad_rows), max_quarantined_share=1.0)
    options = ConversionOptions(
        on_bad_rows=BadRowPolicy(str(quality.bad_values)),
        max_rejected_rows=max_rejected_rows,
        parquet=parquet or ParquetOptions(),
    )
    story = _Story(export, data_interval, evidence, evidence_expected, lake.keep_versions)
    if raw_format is RawFormat.PDF:
        log.info("%s is a PDF: archived in the raw zone as evidence", raw.get("uri"))
        with tempfile.TemporaryDirectory(prefix="landing-") as work:
            if not raw.get("sha256") or raw.get("size") is None:  # the manifest needs both
                raw = _download_checked(store, raw, Path(work) / filename)
            evidence_only = _Landing(
                store, partition, raw, raw_format, _no_table(declared), options, story
            )
            return evidence_only.publish(Path(work), {}, started)
    with tempfile.TemporaryDirectory(prefix="landing-") as work:
        timings: dict[str, float] = {}
        local = Path(work) / filename
        raw = _download_checked(store, raw, local)
        timings["download_s"] = _lap(started)
        converted = convert_file(local, raw_format, declared, Path(work) / "parts", options)
        timings["convert_s"] = converted.seconds
        name = export or partition.dataset
        checks = _QualityContext(name, declared, quality, tuple(primary_key))
        results = _check_quality(store, partition, raw, converted, checks)
        gate(name, partition.day, results)
        landing = _Landing(store, partition, raw, raw_format, converted, options, story, results)
        return landing.publish(Path(work), timings, started)


@dataclass(frozen=True)
class _QualityContext:
    export: str
    declared: DatasetSchema
    policy: QualityPolicy
    primary_key: tuple[str, ...]


def _check_quality(
    store: LakeStore,
    partition: Partition,
    raw: Mapping[str, Any],
    converted: ConversionResult,
    checks: _QualityContext,
) -> list[QualityResult]:
    """The policy's checks of the converted file (logged one line each)."""
    vendor_rows = raw.get("vendor_rows")
    seen = Observed(
        rows=converted.rows,
        quarantined=len(converted.rejected),
        vendor_rows=int(vendor_rows) if vendor_rows is not None else None,
        drift=converted.schema.drift(),
        declared=checks.declared.names,
        parts=[part.path for part in converted.parts],
        primary_key=checks.primary_key,
    )
    history = earlier_rows(
        store.read_json,
        lambda day: dataclasses.replace(partition, day=day).manifest_key,
        partition.day,
    )
    results = evaluate(checks.policy, seen, history)
    log_results(checks.export, partition.day, results)
    return results


@dataclass(frozen=True)
class _Story:
    """What the pipeline knows of a partition beyond its raw object."""

    export: str | None
    data_interval: Mapping[str, str] | None
    evidence: Sequence[Mapping[str, Any]]
    evidence_expected: Sequence[str]
    keep_versions: int | None


def _lap(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _no_table(declared: DatasetSchema) -> ConversionResult:
    """What a PDF converts to: nothing. Its manifest records the original as evidence."""
    return ConversionResult(
        rows=0,
        parts=[],
        schema=resolve(declared, declared.names),
        segments=[],
        rejected=[],
        fast_path=False,
        seconds=0.0,
    )


def _download_checked(store: LakeStore, raw: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """Download the original (the recorded version) and check it is the one the fetch
    step wrote; return ``raw`` with the digest and size of what was read (a caller that
    recorded neither gets them measured)."""
    store.download(
        str(raw["key"]), path, bucket=raw.get("bucket"), version_id=raw.get("version_id")
    )
    size = path.stat().st_size
    if raw.get("size") is not None and int(raw["size"]) != size:
        raise LandingError(f"{raw.get('uri')}: size {size} != recorded size {raw['size']}")
    digest = file_sha256(path)
    if raw.get("sha256") and digest != raw["sha256"]:
        raise LandingError(f"{raw.get('uri')}: sha256 {digest} != recorded {raw['sha256']}")
    return {**raw, "sha256": digest, "size": size}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Landing:
    """One run's publication: stage parts (and rejected rows), then switch the version."""

    def __init__(
        self,
        store: LakeStore,
        partition: Partition,
        raw: Mapping[str, Any],
        raw_format: RawFormat,
        converted: ConversionResult,
        options: ConversionOptions,
        story: _Story,
        quality: Sequence[QualityResult] = (),
    ) -> None:
        self.store = store
        self.partition = partition
        self.raw = raw
        self.raw_format = raw_format
        self.converted = converted
        self.options = options
        self.story = story
        self.quality = list(quality)
        interval = story.data_interval
        self.data_interval = dict(interval) if interval else day_interval(partition.day)
        self.evidence = [
            dict(item) if "kind" in item else evidence_entry(item) for item in story.evidence
        ]
        self.run_token = new_token()
        self.publisher = PartitionPublisher(store, partition, self.run_token, story.keep_versions)

    def publish(self, work: Path, timings: dict[str, float], started: float) -> LandingResult:
        parts = [
            StagedPart(p.path, p.rows, p.bytes, file_sha256(p.path)) for p in self.converted.parts
        ]
        upload_started = time.monotonic()
        try:
            staged = self.publisher.stage(parts)
            rejected = self._stage_rejected_rows(work)
        except BaseException:
            self.publisher.drop_staging()
            raise
        timings["upload_s"] = _lap(upload_started)
        publish_started = time.monotonic()

        def build(parts: list[PartEntry]) -> Manifest:
            timings["publish_s"] = _lap(publish_started)
            timings["total_s"] = _lap(started)
            return self._manifest(parts, rejected, timings)

        manifest = self.publisher.publish(staged, parts, build)
        return {
            "manifest_uri": s3_uri(self.store.bucket, self.partition.manifest_key),
            "version": manifest["version"],
            "rows": manifest["rows"],
            "parts": [entry["uri"] for entry in manifest["parts"]],
            "drift": manifest["drift"],
            "rejected_rows": manifest["rejected"]["rows"],
            "quarantine_uri": manifest["rejected"]["uri"],
            "quality": list(manifest.get("quality", [])),
            "warnings": warnings_of(manifest.get("quality", [])),
        }

    def _stage_rejected_rows(self, work: Path) -> RejectedEntry:
        if not self.converted.rejected:
            return {"rows": 0, "uri": None}
        path = work / "rejected.csv"
        write_rejected_rows(self.converted.rejected, path)
        key = self.partition.quarantine_key(self.run_token)
        version_id = self.store.upload(path, key, evidence=True)
        return {
            "rows": len(self.converted.rejected),
            "uri": s3_uri(self.store.bucket, key),
            "key": key,
            "sha256": file_sha256(path),
            "size": path.stat().st_size,
            "version_id": version_id,
        }

    def _manifest(
        self, parts: list[PartEntry], rejected: RejectedEntry, timings: dict[str, float]
    ) -> Manifest:
        converted, raw = self.converted, self.raw
        parquet = self.options.parquet
        raw_bucket = str(raw.get("bucket") or self.store.bucket)
        return {
            "manifest_version": MANIFEST_VERSION,
            "export": self.story.export,
            "vendor": self.partition.vendor,
            "dataset": self.partition.dataset,
            "day": self.partition.day.isoformat(),
            "data_interval": self.data_interval,
            "version": "",  # set by the publisher at the switch
            "supersedes": None,
            "run_token": self.run_token,
            "published_at": "",
            "job_id": raw.get("job_id"),
            "jobs": [dict(job) for job in raw.get("jobs") or []],
            "resubmit_budget": raw.get("resubmit_budget"),
            "vendor_rows": raw.get("vendor_rows"),
            "request": redact(raw.get("request")),
            "raw": {
                "uri": str(raw.get("uri") or s3_uri(raw_bucket, str(raw["key"]))),
                "bucket": raw_bucket,
                "key": str(raw["key"]),
                "sha256": str(raw.get("sha256") or ""),
                "size": int(raw.get("size") or 0),
                "version_id": raw.get("version_id"),
                "downloaded_at": raw.get("downloaded_at"),
                "content_type": raw.get("content_type"),
                "filename": str(raw.get("filename") or ""),
                "format": str(self.raw_format),
            },
            "rows": converted.rows,
            "parts": parts,
            "schema": converted.schema.describe(),
            "drift": converted.schema.drift(),
            "segments": converted.segments,
            "rejected": rejected,
            "parquet": {
                "compression": parquet.compression,
                "row_group_rows": parquet.row_group_rows,
                "fast_path": converted.fast_path,
            },
            "timings": timings,
            "evidence": self.evidence,
            "evidence_expected": list(self.story.evidence_expected),
            "quality": self.quality,
            "object_lock": None,
            "producer": {"name": "compliance-exports", "version": __version__},
        }


def attach_evidence(
    partition: Partition, evidence: Sequence[Mapping[str, Any]], *, lake: LakeOptions
) -> str:
    """Publish a new version of the partition that records ``evidence`` (other originals
    of the partition, e.g. audit PDFs), replacing evidence of the same kinds; return the
    live manifest's URI.

    The partition's data landed first, on its own (a day whose PDFs fail still has its
    Parquet); this version names the same raw object and parts plus every original of
    the day. The version it supersedes stays as it was (``lake.keep_versions``).
    """
    store = lake.store()
    publisher = PartitionPublisher(store, partition, new_token(), lake.keep_versions)
    live = publisher.live()
    if live is None:
        raise LandingError(
            f"s3://{lake.bucket}/{partition.manifest_key}: no manifest to record evidence in "
            "(the partition has not landed)"
        )
    if live.get("manifest_version") != MANIFEST_VERSION:
        raise LandingError(
            f"s3://{lake.bucket}/{partition.manifest_key} is a version "
            f"{live.get('manifest_version')} manifest: land the day again before attaching"
        )
    fresh = [dict(item) if "kind" in item else evidence_entry(item) for item in evidence]
    kinds = {str(item["kind"]) for item in fresh}
    kept = [item for item in live.get("evidence", []) if item.get("kind") not in kinds]

    def build() -> Manifest:
        body: Manifest = dict(live)  # type: ignore[assignment]
        body["evidence"] = [*kept, *fresh]
        return body

    manifest = publisher.switch(build)
    publisher.retire()
    log.info(
        "%d evidence file(s) recorded in %s version %s",
        len(evidence),
        partition.manifest_key,
        manifest["version"],
    )
    return s3_uri(lake.bucket, partition.manifest_key)


#: how far back ``publish_changes`` looks for the previous published day
CHANGES_LOOKBACK_DAYS = 35
CHANGES_SUFFIX = "__changes"


def changes_partition(partition: Partition) -> Partition:
    """Where the changes of ``partition``'s day are published: ``dataset=<d>__changes``."""
    return Partition(
        partition.vendor, partition.dataset + CHANGES_SUFFIX, partition.day, partition.prefix
    )


def publish_changes(
    partition: Partition,
    key: Sequence[str],
    *,
    lake: LakeOptions,
    export: str | None = None,
    memory_budget: int = 256 * 2**20,
) -> dict[str, Any]:
    """Publish what changed in a keyed snapshot since its previous published day.

    Compares the live version of ``partition`` with the live version of the most recent
    earlier day (within :data:`CHANGES_LOOKBACK_DAYS`) and publishes one row per added,
    removed or changed key (:func:`compliance_exports.landing.changes.diff_snapshots`)
    as a version of ``dataset=<d>__changes/dt=<day>``, whose manifest names the current
    day's raw original and both versions compared (``changes_of``). The first day of a
    dataset has no changes partition, and the result says so.
    """
    from compliance_exports.landing.changes import diff_snapshots

    store = lake.store()
    current = store.read_json(partition.manifest_key)
    if not isinstance(current, dict):
        raise LandingError(f"s3://{lake.bucket}/{partition.manifest_key}: nothing published")
    previous_day, previous = _previous_published(store, partition)
    if previous is None:
        reason = (
            f"first day of {partition.dataset} (no published day in the "
            f"{CHANGES_LOOKBACK_DAYS} days before {partition.day}): no changes partition"
        )
        log.info("%s", reason)
        return {"published": False, "reason": reason}
    target = changes_partition(partition)
    with tempfile.TemporaryDirectory(prefix="changes-") as work:
        folder = Path(work)
        before = _download_parts(store, previous, folder / "before")
        after = _download_parts(store, current, folder / "after")
        summary, files = diff_snapshots(
            before, after, key, folder / "out", memory_budget=memory_budget
        )
        run_token = new_token()
        parts = [StagedPart(f, _parquet_rows(f), f.stat().st_size, file_sha256(f)) for f in files]
        publisher = PartitionPublisher(store, target, run_token, lake.keep_versions)
        try:
            staged = publisher.stage(parts)
        except BaseException:
            publisher.drop_staging()
            raise
        changes_of = {
            "previous_day": previous_day.isoformat(),
            "previous_version": previous.get("version") or previous.get("run_token"),
            "current_version": current["version"],
            "key": list(key),
            "added": summary.added,
            "removed": summary.removed,
            "changed": summary.changed,
            "columns_added": summary.columns_added,
            "columns_removed": summary.columns_removed,
        }

        def build(parts: list[PartEntry]) -> Manifest:
            body: Manifest = {
                **current,  # type: ignore[typeddict-item]
                "export": export or current.get("export"),
                "dataset": target.dataset,
                "run_token": run_token,
                "rows": summary.rows,
                "parts": parts,
                "schema": [{"name": f.name, "type": str(f.type)} for f in _schema(files[0])],
                "drift": {"added": summary.columns_added, "missing": summary.columns_removed},
                "segments": [],
                "rejected": {"rows": 0, "uri": None},
                "evidence": [],
                "evidence_expected": [],
                "timings": {"diff_s": round(summary.seconds, 3)},
                "changes_of": changes_of,
            }
            return body

        manifest = publisher.publish(staged, parts, build)
    log.info(
        "%s: %d added, %d removed, %d changed since %s (version %s)",
        target.curated_prefix,
        summary.added,
        summary.removed,
        summary.changed,
        previous_day,
        manifest["version"],
    )
    return {
        "published": True,
        "manifest_uri": s3_uri(lake.bucket, target.manifest_key),
        **changes_of,
    }


def _previous_published(
    store: LakeStore, partition: Partition
) -> tuple[dt.date, dict[str, Any] | None]:
    for back in range(1, CHANGES_LOOKBACK_DAYS + 1):
        day = partition.day - dt.timedelta(days=back)
        earlier = Partition(partition.vendor, partition.dataset, day, partition.prefix)
        manifest = store.read_json(earlier.manifest_key)
        if isinstance(manifest, dict):
            return day, manifest
    return partition.day, None


def _download_parts(store: LakeStore, manifest: Mapping[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    files = []
    for index, part in enumerate(manifest.get("parts") or []):
        path = folder / f"part-{index:05d}.parquet"
        store.download(str(part["key"]), path, version_id=part.get("version_id"))
        files.append(path)
    return files


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(path).num_rows)


def _schema(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_schema(path)
