"""The manifest of a curated partition version: what was landed, from what, and how.

The manifest is the partition's single source of truth: a reader lists its ``parts``
and reads exactly those keys (see docs/LANDING.md); an auditor re-hashes the originals
it names (docs/MANIFEST.md, ``python -m compliance_exports verify``). Its JSON Schema is
``manifest.schema.json`` beside this module (docs/manifest.schema.json); every manifest
is checked against it before it is published.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from compliance_exports.landing.quality import QualityResult

MANIFEST_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
_SECRET_KEY = re.compile(
    r"secret|password|passwd|token|api[-_]?key|apikey|authorization|credential|private",
    re.IGNORECASE,
)
REDACTED = "***"


class PartEntry(TypedDict):
    key: str
    uri: str
    rows: int
    bytes: int
    sha256: str
    version_id: str | None


class RawEntry(TypedDict):
    uri: str
    bucket: str
    key: str
    sha256: str
    size: int
    version_id: str | None
    downloaded_at: str | None
    content_type: str | None
    filename: str
    format: str


class RejectedEntry(TypedDict, total=False):
    rows: int
    uri: str | None
    key: str
    sha256: str
    size: int
    version_id: str | None


class Manifest(TypedDict):
    manifest_version: int
    export: str | None
    vendor: str
    dataset: str
    day: str
    data_interval: dict[str, str]
    version: str  # this publication (its immutable copy: _versions/<version>.json)
    supersedes: str | None  # the version live before
    run_token: str  # the landing run whose parts these are
    published_at: str
    job_id: str | None
    jobs: list[dict[str, Any]]  # every remote job behind the raw file, with its ending
    resubmit_budget: int | None  # the export task's budget (None: a synchronous export, no job)
    vendor_rows: int | None  # the row count the vendor reported, where it gives one
    request: Any
    raw: RawEntry
    rows: int
    parts: list[PartEntry]
    schema: list[dict[str, object]]
    drift: dict[str, list[str]]
    segments: list[str]
    rejected: RejectedEntry
    parquet: dict[str, object]
    timings: dict[str, float]
    evidence: list[dict[str, Any]]  # other originals of the partition, e.g. audit PDFs
    evidence_expected: list[str]  # kinds of evidence every partition of the export holds
    #: the data-quality checks evaluated before publication (absent before they existed)
    quality: NotRequired[list[QualityResult]]
    object_lock: dict[str, Any] | None
    producer: dict[str, str]
    changes_of: NotRequired[dict[str, Any]]  # a <dataset>__changes partition's comparison


class ManifestError(ValueError):
    """A manifest that does not match docs/manifest.schema.json."""


@cache
def manifest_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def manifest_problems(body: Any) -> list[str]:
    """Where ``body`` breaks the manifest's JSON Schema (empty when it is valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(
        manifest_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]


def check_manifest(body: Any) -> None:
    """Raise :class:`ManifestError` naming the first problems; publish nothing invalid."""
    problems = manifest_problems(body)
    if problems:
        raise ManifestError("manifest does not match its schema: " + "; ".join(problems[:5]))


EVIDENCE_FIELDS = ("uri", "key", "sha256", "size", "version_id", "downloaded_at")


def evidence_entry(raw: Mapping[str, Any], **facts: Any) -> dict[str, Any]:
    """How a manifest lists another original of the partition (e.g. an audit PDF):
    ``kind`` (its file type), the ``facts`` given (a PDF's ``window`` and
    ``expected_events``), and the raw object's key, digest, size and version."""
    kind = str(raw.get("filename") or raw.get("key") or "").rsplit(".", 1)[-1].lower()
    return {
        "kind": str(facts.pop("kind", None) or kind or "file"),
        **redact(facts),
        **{field: raw.get(field) for field in EVIDENCE_FIELDS},
    }


def named_objects(
    manifest: Mapping[str, Any], bucket: str | None = None
) -> Iterator[tuple[str, str | None]]:
    """``(key, version_id)`` of every object a manifest names: the raw original, the
    parts, the other originals (evidence) and the quarantined rows; with ``bucket``,
    only those in that bucket."""
    raw = manifest.get("raw") or {}
    items = [raw, *(manifest.get("parts") or []), *(manifest.get("evidence") or [])]
    items.append(manifest.get("rejected") or {})
    for item in items:
        uri = str(item.get("uri") or "")
        if item.get("key") and (bucket is None or uri.startswith(f"s3://{bucket}/")):
            yield str(item["key"]), item.get("version_id")


class LandingResult(TypedDict):
    """What the landing task returns to XCom: identifiers and counts only."""

    manifest_uri: str | None
    version: str  # the published version
    rows: int
    parts: list[str]
    drift: dict[str, list[str]] | None
    rejected_rows: int
    quarantine_uri: str | None
    quality: list[QualityResult]  # every check's result (docs/QUALITY.md)
    warnings: list[str]  # "<check>: <detail>" of each check that warned


def redact(value: Any) -> Any:
    """A copy of a request with the values of secret-looking keys replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if _SECRET_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def day_interval(day: dt.date) -> dict[str, str]:
    """The data interval a daily partition covers, when the caller gives none: [day, day+1)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return {"start": start.isoformat(), "end": (start + dt.timedelta(days=1)).isoformat()}
