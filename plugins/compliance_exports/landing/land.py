"""The landing task: one raw object in the lake -> one published curated partition.

This is the thin, Airflow-facing entry point (S3 through the amazon provider's
S3Hook); the conversion itself lives in :mod:`compliance_exports.landing.convert`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
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
    PartitionPublisher,
    ServerSideEncryption,
    StagedPart,
)
from compliance_exports.landing.layout import Partition, s3_uri
from compliance_exports.landing.manifest import (
    MANIFEST_VERSION,
    LandingResult,
    Manifest,
    PartEntry,
    day_interval,
    redact,
)
from compliance_exports.landing.parquet import ParquetOptions
from compliance_exports.landing.schema import DatasetSchema, resolve
from compliance_exports.landing.sources import RawFormat, detect_format

log = logging.getLogger(__name__)
_HASH_CHUNK = 1 << 20


def new_run_token(now: dt.datetime | None = None) -> str:
    """Unique per landing run, sortable by time: ``20261121T233000Z-1a2b3c4d``."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


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
    aws_conn_id: str,
    bucket: str,
    prefix: str = "",
    sse: str | None = None,
    kms_key_id: str | None = None,
    on_bad_rows: BadRowPolicy | str = BadRowPolicy.FAIL,
    max_rejected_rows: int = 10_000,
    data_interval: Mapping[str, str] | None = None,
    parquet: ParquetOptions | None = None,
    evidence: Sequence[Mapping[str, Any]] = (),
) -> LandingResult:
    """Convert ``raw`` (a fetch step's RawObject dict) to Parquet and publish the partition.

    A rerun for the same partition replaces it; a failure leaves the previous version
    as it was. A PDF is evidence: it stays in the raw zone as it came, and the partition's
    manifest (no Parquet parts, zero rows) records it with its sha256 and size.
    ``partition`` defaults to the raw object's vendor, dataset and day under ``prefix``.
    ``evidence`` lists other originals of the partition (e.g. audit PDFs, as RawObject
    dicts) to record in the manifest.
    """
    started = time.monotonic()
    filename = str(raw.get("filename") or Path(str(raw["key"])).name)
    raw_format = detect_format(filename, raw.get("content_type"))
    declared = (
        schema if isinstance(schema, DatasetSchema) else DatasetSchema.from_mapping(schema or {})
    )
    partition = partition or partition_of(raw, prefix)
    store = LakeStore(aws_conn_id, bucket, ServerSideEncryption(sse, kms_key_id))
    options = ConversionOptions(
        on_bad_rows=BadRowPolicy(on_bad_rows),
        max_rejected_rows=max_rejected_rows,
        parquet=parquet or ParquetOptions(),
    )
    if raw_format is RawFormat.PDF:
        log.info("%s is a PDF: archived in the raw zone as evidence", raw.get("uri"))
        evidence_only = _Landing(
            store, partition, raw, raw_format, _no_table(declared), options, data_interval, evidence
        )
        with tempfile.TemporaryDirectory(prefix="landing-") as work:
            return evidence_only.publish(Path(work), {}, started)
    with tempfile.TemporaryDirectory(prefix="landing-") as work:
        timings: dict[str, float] = {}
        local = Path(work) / filename
        _download_checked(store, raw, local)
        timings["download_s"] = _lap(started)
        converted = convert_file(local, raw_format, declared, Path(work) / "parts", options)
        timings["convert_s"] = converted.seconds
        landing = _Landing(
            store, partition, raw, raw_format, converted, options, data_interval, evidence
        )
        return landing.publish(Path(work), timings, started)


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


def _download_checked(store: LakeStore, raw: Mapping[str, Any], path: Path) -> None:
    """Download the original and check it is the one the fetch step recorded."""
    store.download(str(raw["key"]), path, bucket=raw.get("bucket"))
    size = path.stat().st_size
    if raw.get("size") is not None and int(raw["size"]) != size:
        raise LandingError(f"{raw.get('uri')}: size {size} != recorded size {raw['size']}")
    if raw.get("sha256"):
        digest = _sha256(path)
        if digest != raw["sha256"]:
            raise LandingError(f"{raw.get('uri')}: sha256 {digest} != recorded {raw['sha256']}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Landing:
    """One run's publication: stage parts (and rejected rows), then switch the manifest."""

    def __init__(
        self,
        store: LakeStore,
        partition: Partition,
        raw: Mapping[str, Any],
        raw_format: RawFormat,
        converted: ConversionResult,
        options: ConversionOptions,
        data_interval: Mapping[str, str] | None,
        evidence: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.store = store
        self.partition = partition
        self.raw = raw
        self.raw_format = raw_format
        self.converted = converted
        self.options = options
        self.data_interval = dict(data_interval) if data_interval else day_interval(partition.day)
        self.evidence = [redact(dict(item)) for item in evidence]
        self.run_token = new_run_token()
        self.publisher = PartitionPublisher(store, partition, self.run_token)

    def publish(self, work: Path, timings: dict[str, float], started: float) -> LandingResult:
        parts = [StagedPart(p.path, p.rows, p.bytes) for p in self.converted.parts]
        upload_started = time.monotonic()
        try:
            staged = self.publisher.stage(parts)
            quarantine_uri = self._stage_rejected_rows(work)
        except BaseException:
            self.publisher.drop_staging()
            raise
        timings["upload_s"] = _lap(upload_started)
        publish_started = time.monotonic()

        def build(parts: list[PartEntry]) -> Manifest:
            timings["publish_s"] = _lap(publish_started)
            timings["total_s"] = _lap(started)
            return self._manifest(parts, quarantine_uri, timings)

        manifest = self.publisher.publish(staged, parts, build)
        return {
            "manifest_uri": s3_uri(self.store.bucket, self.partition.manifest_key),
            "rows": manifest["rows"],
            "parts": [entry["uri"] for entry in manifest["parts"]],
            "drift": manifest["drift"],
            "rejected_rows": manifest["rejected"]["rows"],
            "quarantine_uri": quarantine_uri,
        }

    def _stage_rejected_rows(self, work: Path) -> str | None:
        if not self.converted.rejected:
            return None
        path = work / "rejected.csv"
        write_rejected_rows(self.converted.rejected, path)
        key = self.partition.quarantine_key(self.run_token)
        self.store.upload(path, key)
        return s3_uri(self.store.bucket, key)

    def _manifest(
        self, parts: list[PartEntry], quarantine_uri: str | None, timings: dict[str, float]
    ) -> Manifest:
        converted, raw = self.converted, self.raw
        parquet = self.options.parquet
        raw_bucket = str(raw.get("bucket") or self.store.bucket)
        return {
            "manifest_version": MANIFEST_VERSION,
            "vendor": self.partition.vendor,
            "dataset": self.partition.dataset,
            "day": self.partition.day.isoformat(),
            "data_interval": self.data_interval,
            "run_token": self.run_token,
            "published_at": dt.datetime.now(dt.UTC).isoformat(),
            "job_id": raw.get("job_id"),
            "jobs": [dict(job) for job in raw.get("jobs") or []],
            "resubmit_budget": raw.get("resubmit_budget"),
            "request": redact(raw.get("request")),
            "raw": {
                "uri": str(raw.get("uri") or s3_uri(raw_bucket, str(raw["key"]))),
                "bucket": raw_bucket,
                "key": str(raw["key"]),
                "sha256": str(raw.get("sha256") or ""),
                "size": int(raw.get("size") or 0),
                "content_type": raw.get("content_type"),
                "filename": str(raw.get("filename") or ""),
                "format": str(self.raw_format),
            },
            "rows": converted.rows,
            "parts": parts,
            "schema": converted.schema.describe(),
            "drift": converted.schema.drift(),
            "segments": converted.segments,
            "rejected": {"rows": len(converted.rejected), "uri": quarantine_uri},
            "parquet": {
                "compression": parquet.compression,
                "row_group_rows": parquet.row_group_rows,
                "fast_path": converted.fast_path,
            },
            "timings": timings,
            "evidence": self.evidence,
            "producer": {"name": "compliance-exports", "version": __version__},
        }


def attach_evidence(
    partition: Partition,
    evidence: Sequence[Mapping[str, Any]],
    *,
    aws_conn_id: str,
    bucket: str,
    sse: str | None = None,
    kms_key_id: str | None = None,
) -> str:
    """Record ``evidence`` (other originals of the partition, e.g. audit PDFs) in its live
    manifest, replacing earlier evidence of the same kinds; return the manifest's URI.

    The partition's data landed first, on its own (a day whose PDFs fail still has its
    Parquet); this one PUT then makes the manifest name every original of the day.
    """
    store = LakeStore(aws_conn_id, bucket, ServerSideEncryption(sse, kms_key_id))
    manifest = store.read_json(partition.manifest_key)
    if not isinstance(manifest, dict):
        raise LandingError(
            f"s3://{bucket}/{partition.manifest_key}: no manifest to record evidence in "
            "(the partition has not landed)"
        )
    kinds = {str(item.get("kind")) for item in evidence}
    kept = [item for item in manifest.get("evidence", []) if item.get("kind") not in kinds]
    manifest["evidence"] = [*kept, *(dict(item) for item in evidence)]
    store.put_json(partition.manifest_key, manifest)
    log.info("%d evidence file(s) recorded in %s", len(evidence), partition.manifest_key)
    return s3_uri(bucket, partition.manifest_key)
