"""Glue between a DAG's tasks and the landing package (imported inside tasks only).

``land_export`` lands one fetched raw object of a registry entry as its curated
partition for the slice's day, and records in the manifest what was asked of the
vendor and which interval (or, for a snapshot, which extraction time) it stands for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance_exports.landing.manifest import LandingResult
    from compliance_exports.registry import ExportEntry


def slice_interval(item: Mapping[str, Any]) -> dict[str, str]:
    """The manifest's ``data_interval``: the slice's bounds, and a snapshot's extraction time."""
    piece = item["slice"]
    interval = {"start": piece["start"], "end": piece["end"]}
    if piece.get("snapshot"):
        interval["extracted_at"] = piece.get("extracted_at") or dt.datetime.now(dt.UTC).isoformat()
    return interval


def land_export(
    entry: ExportEntry,
    raw: Mapping[str, Any],
    item: Mapping[str, Any],
    request: Mapping[str, Any] | None = None,
) -> LandingResult:
    from compliance_exports.landing.land import land_raw_object
    from compliance_exports.landing.layout import Partition

    partition = Partition(
        entry.vendor.value, entry.dataset, dt.date.fromisoformat(item["day"]), entry.lake.prefix
    )
    return land_raw_object(
        {**raw, "request": dict(request or item.get("submit") or {})},
        dict(entry.schema),
        partition,
        aws_conn_id=entry.lake.aws_conn_id,
        bucket=entry.lake.bucket,
        sse=entry.lake.sse,
        kms_key_id=entry.lake.kms_key_id,
        data_interval=slice_interval(item),
    )
