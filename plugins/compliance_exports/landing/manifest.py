"""The ``_manifest.json`` of a curated partition: what was landed, from what, and how.

The manifest is the partition's single source of truth: a reader lists its ``parts``
and reads exactly those keys (see docs/LANDING.md). It is written last, in one PUT.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, TypedDict

MANIFEST_VERSION = 1
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


class RawEntry(TypedDict):
    uri: str
    bucket: str
    key: str
    sha256: str
    size: int
    content_type: str | None
    filename: str
    format: str


class RejectedEntry(TypedDict):
    rows: int
    uri: str | None


class Manifest(TypedDict):
    manifest_version: int
    vendor: str
    dataset: str
    day: str
    data_interval: dict[str, str]
    run_token: str
    published_at: str
    job_id: str | None
    jobs: list[dict[str, Any]]  # every remote job behind the raw file, with its ending
    resubmit_budget: int | None  # the export task's budget (None: no job, e.g. Maxsight)
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
    producer: dict[str, str]


class LandingResult(TypedDict):
    """What the landing task returns to XCom: identifiers and counts only."""

    manifest_uri: str | None
    rows: int
    parts: list[str]
    drift: dict[str, list[str]] | None
    rejected_rows: int
    quarantine_uri: str | None


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
