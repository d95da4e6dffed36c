"""Builds partitions as the landing code publishes them (manifest version 2), for verify.

Real objects in a real (local) S3: a raw CSV, Parquet parts written with pyarrow, audit
PDFs, a rejected-rows file, then the ``_versions/`` copy and the live manifest. Every
manifest built here is checked against the JSON Schema first, so a test that breaks one
on purpose starts from a valid one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from compliance_exports.landing.layout import new_token, s3_uri
from compliance_exports.landing.manifest import manifest_problems
from compliance_exports.registry import DEFAULT_REGISTRY, ExportEntry, Registry, parse_registry

DAY = dt.date(2026, 11, 20)
WINDOWED = "oleria_employee_events"  # a windowed export without PDFs
AUDIT = "maxsight_audit_events"  # windowed, with audit PDFs for every day
SNAPSHOT = "oleria_identities"
PDF_SNAPSHOT = "sailpoint_uncorrelated_accounts_pdf"  # its raw original is a PDF, no parts


def registry_document(bucket: str = "compliance-lake") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DEFAULT_REGISTRY.read_text(encoding="utf-8"))
    doc["defaults"]["lake"]["bucket"] = bucket
    return doc


def registry(bucket: str = "compliance-lake") -> Registry:
    return parse_registry(registry_document(bucket), source="tests/verify")


def write_registry(path: Path, bucket: str) -> Path:
    path.write_text(yaml.safe_dump(registry_document(bucket)), encoding="utf-8")
    return path


def day_windows(day: dt.date, *counts: int) -> list[dict[str, Any]]:
    """Two windows tiling ``day`` (00:00..05:59:59.999, 06:00..23:59:59.999) holding
    ``counts`` events."""
    first, second = counts
    return [
        window(f"{day}T00:00:00.000Z", f"{day}T05:59:59.999Z", first),
        window(f"{day}T06:00:00.000Z", f"{day}T23:59:59.999Z", second),
    ]


def window(
    start: str, end: str, events: int | None, filters: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    return {
        "start": start,
        "end": end,
        "filters": {dim: list(values) for dim, values in (filters or {}).items()},
        "expected_events": events,
    }


def parquet_bytes(rows: int, first_id: int = 0) -> bytes:
    table = pa.table(
        {
            "event_id": [f"ev-{n:06d}" for n in range(first_id, first_id + rows)],
            "n": pa.array(range(first_id, first_id + rows), pa.int64()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=max(1, rows // 3 or 1))
    return buffer.getvalue()


def pdf_bytes(label: str) -> bytes:
    return b"%PDF-1.7\n% audit events " + label.encode() + b"\n%%EOF\n"


@dataclass
class Lake:
    """Writes one bucket's objects (versioned or not) and remembers what it wrote."""

    client: Any
    bucket: str

    def put(self, key: str, body: bytes) -> str | None:
        response = self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        version: str | None = response.get("VersionId")
        return version

    def obj(self, key: str, body: bytes, **extra: Any) -> dict[str, Any]:
        """Write ``body`` at ``key``; the manifest entry naming exactly that object."""
        version = self.put(key, body)
        return {
            "key": key,
            "uri": s3_uri(self.bucket, key),
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "version_id": version,
            **extra,
        }

    def land(
        self,
        entry: ExportEntry,
        day: dt.date = DAY,
        *,
        part_rows: Sequence[int] = (25, 15),
        windows: Sequence[Mapping[str, Any]] | None = None,
        rejected_rows: int = 0,
        publish: bool = True,
    ) -> dict[str, Any]:
        """Land ``entry``'s partition of ``day`` and (by default) publish its manifest.

        The audit export gets PDFs of ``windows`` (default: two tiling the day, holding
        all rows, rejected ones included) and ``evidence_expected: [pdf]``; the PDF
        snapshot gets a PDF original and no parts.
        """
        partition = entry.partition(day)
        token = new_token()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        pdf_only = entry.name == PDF_SNAPSHOT
        if pdf_only:
            part_rows = ()
        rows = sum(part_rows)
        if pdf_only:
            raw_body, filename, raw_format = pdf_bytes(f"{entry.name} {day}"), "report.pdf", "pdf"
        else:
            lines = [f"ev-{n:06d},{n}" for n in range(rows)]
            raw_body = ("event_id,n\n" + "\n".join(lines) + "\n").encode()
            filename, raw_format = "export.csv", "csv"
        raw = self.obj(
            partition.raw_key(filename, token),
            raw_body,
            bucket=self.bucket,
            content_type="application/pdf" if pdf_only else "text/csv",
            filename=filename,
            format=raw_format,
            downloaded_at=now,
        )
        parts = []
        first_id = 0
        for n, count in enumerate(part_rows):
            key = f"{partition.curated_prefix}part-{token}-{n:05d}.parquet"
            body = parquet_bytes(count, first_id)
            part = self.obj(key, body, rows=count, bytes=len(body))
            del part["size"]
            parts.append(part)
            first_id += count
        evidence: list[dict[str, Any]] = []
        expected: list[str] = []
        if entry.name == AUDIT:
            expected = ["pdf"]
            if windows is None:
                events = rows + rejected_rows  # the PDFs hold the quarantined rows too
                windows = day_windows(day, events - events // 3, events // 3)
            for n, win in enumerate(windows):
                key = partition.raw_key(f"audit-{n:03d}.pdf", token)
                evidence.append(
                    self.obj(
                        key,
                        pdf_bytes(f"{win['start']}..{win['end']}"),
                        kind="pdf",
                        downloaded_at=now,
                        window=dict(win),
                        expected_events=win.get("expected_events"),
                    )
                )
        rejected: dict[str, Any] = {"rows": 0, "uri": None}
        if rejected_rows:
            body = b"row,reason\n" + b"".join(
                f"{n},bad timestamp\n".encode() for n in range(rejected_rows)
            )
            rejected = self.obj(partition.quarantine_key(token), body, rows=rejected_rows)
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        manifest: dict[str, Any] = {
            "manifest_version": 2,
            "export": entry.name,
            "vendor": partition.vendor,
            "dataset": partition.dataset,
            "day": day.isoformat(),
            "data_interval": {
                "start": start.isoformat(),
                "end": (start + dt.timedelta(days=1)).isoformat(),
            },
            "version": new_token(),
            "supersedes": None,
            "run_token": token,
            "published_at": now,
            "job_id": None,
            "jobs": [],
            "resubmit_budget": None,
            "vendor_rows": None,
            "request": {"api_key": "***"},
            "raw": raw,
            "rows": rows,
            "parts": parts,
            "schema": [{"name": "event_id", "type": "string"}, {"name": "n", "type": "int64"}],
            "drift": {"added": [], "missing": []},
            "segments": [],
            "rejected": rejected,
            "parquet": {"compression": "zstd"},
            "timings": {"total_s": 0.5},
            "evidence": evidence,
            "evidence_expected": expected,
            "object_lock": None,
            "producer": {"name": "compliance-exports", "version": "0.1.0"},
        }
        assert manifest_problems(manifest) == [], manifest_problems(manifest)
        if publish:
            self.publish(entry, manifest)
        return manifest

    def publish(
        self, entry: ExportEntry, manifest: Mapping[str, Any], day: dt.date | None = None
    ) -> None:
        """Write the version's immutable copy, then the live manifest (as landing does),
        in the partition of the manifest's day (or of ``day``)."""
        partition = entry.partition(day or dt.date.fromisoformat(str(manifest["day"])))
        body = json.dumps(manifest, indent=2).encode()
        self.put(partition.version_key(str(manifest["version"])), body)
        self.put(partition.manifest_key, body)

    def record_run(self, entry: ExportEntry, day: dt.date = DAY) -> str:
        """A run record: a DAG run planned ``day`` for ``entry``."""
        partition = entry.partition(day)
        token = new_token()
        key = partition.run_record_key(token)
        record = {
            "export": entry.name,
            "vendor": partition.vendor,
            "dataset": partition.dataset,
            "day": day.isoformat(),
            "kind": entry.kind.value,
            "dag_id": entry.dag_id,
            "run_id": f"scheduled__{day}T00:00:00+00:00",
            "planned_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        self.put(key, json.dumps(record).encode())
        return key
