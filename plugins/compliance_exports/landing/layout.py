"""S3 key layout of the lake: raw zone (originals, as they came) and curated zone (Parquet).

Pure functions: deterministic keys from the data interval make reruns overwrite, never append.

    raw/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/<file>
    curated/vendor=<v>/dataset=<d>/dt=<YYYY-MM-DD>/part-<n>.parquet  (+ _manifest.json)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
MANIFEST_NAME = "_manifest.json"


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

    def raw_key(self, filename: str) -> str:
        return self.raw_prefix + _check_filename(filename)

    def part_key(self, n: int) -> str:
        return f"{self.curated_prefix}part-{n:05d}.parquet"

    @property
    def manifest_key(self) -> str:
        return self.curated_prefix + MANIFEST_NAME

    def staging_prefix(self, run_token: str) -> str:
        """Where parts are written before publication (invisible to readers)."""
        _check_segment("run token", run_token)
        return _join(self.prefix, "_staging", self._tail, run_token) + "/"

    def quarantine_key(self, run_token: str) -> str:
        _check_segment("run token", run_token)
        return _join(self.prefix, "quarantine", self._tail, f"rejected-{run_token}.csv")


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"
