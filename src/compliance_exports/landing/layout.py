"""S3 key layout of the lake: raw zone (originals, as they came) and curated zone (Parquet).

Pure functions. Every object a run writes has a run-scoped key (a token no other run
shares), so no run ever overwrites what another wrote; only the live manifest's key is
written again, by each new version (see docs/MANIFEST.md)::

    raw/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/run=<token>/<file>
    curated/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/part-<token>-NNNNN.parquet
    curated/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/_manifest.json           (the live version)
    curated/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/_versions/<token>.json   (every version)
    _runs/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/<token>.json               (a run planned the day)

A token is ``YYYYMMDDTHHMMSSZ-<8 hex>``: unique, and sortable by the time it was made.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
TOKEN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
MANIFEST_NAME = "_manifest.json"
VERSIONS_DIR = "_versions"


def new_token(now: dt.datetime | None = None) -> str:
    """Unique per run step, sortable by time to the microsecond: ``20261121T233000Z-``
    then the microseconds as 5 hex digits and 3 random ones (``0f423abc``)."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{moment.microsecond:05x}{uuid.uuid4().hex[:3]}"


def check_token(token: str) -> str:
    if not isinstance(token, str) or not TOKEN.match(token):
        raise ValueError(f"{token!r} is not a run token (YYYYMMDDTHHMMSSZ-<8 hex>)")
    return token


def _check_segment(name: str, value: str) -> str:
    if not _SEGMENT.match(value):
        raise ValueError(
            f"{name} {value!r} is not a safe S3 key segment "
            "(letters, digits, '_', '.', '-', not starting with a symbol)"
        )
    return value


def _check_filename(value: str) -> str:
    if not value or "/" in value or value in {".", ".."} or value.startswith("_"):
        raise ValueError(f"file name {value!r} is not a valid raw object name")
    return value


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


@dataclass(frozen=True)
class Partition:
    """One dataset's partition for one data-interval day."""

    vendor: str
    dataset: str
    day: dt.date
    prefix: str = ""  # optional lake prefix inside the bucket, e.g. "compliance"

    def __post_init__(self) -> None:
        _check_segment("vendor", self.vendor)
        _check_segment("dataset", self.dataset)
        if self.prefix:
            for seg in self.prefix.strip("/").split("/"):
                _check_segment("prefix segment", seg)

    @property
    def _tail(self) -> str:
        return f"vendor={self.vendor}/dataset={self.dataset}/dt={self.day.isoformat()}"

    @property
    def raw_prefix(self) -> str:
        return _join(self.prefix, "raw", self._tail) + "/"

    @property
    def curated_prefix(self) -> str:
        return _join(self.prefix, "curated", self._tail) + "/"

    def raw_key(self, filename: str, token: str) -> str:
        """An original fetched by the run step ``token``: never overwritten by another."""
        return f"{self.raw_prefix}run={check_token(token)}/{_check_filename(filename)}"

    @property
    def manifest_key(self) -> str:
        """The live manifest: the one key each new version writes again."""
        return self.curated_prefix + MANIFEST_NAME

    @property
    def versions_prefix(self) -> str:
        return f"{self.curated_prefix}{VERSIONS_DIR}/"

    def version_key(self, version: str) -> str:
        """The immutable copy of one published version's manifest."""
        return f"{self.versions_prefix}{check_token(version)}.json"

    @property
    def run_records_prefix(self) -> str:
        return _join(self.prefix, "_runs", self._tail) + "/"

    def run_record_key(self, token: str) -> str:
        """A record that a DAG run planned this partition (verify: a snapshot that ran)."""
        return f"{self.run_records_prefix}{check_token(token)}.json"

    def staging_prefix(self, run_token: str) -> str:
        """Where parts are written before publication (invisible to readers)."""
        _check_segment("run token", run_token)
        return _join(self.prefix, "_staging", self._tail, run_token) + "/"

    def quarantine_key(self, run_token: str) -> str:
        _check_segment("run token", run_token)
        return _join(self.prefix, "quarantine", self._tail, f"rejected-{run_token}.csv")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
