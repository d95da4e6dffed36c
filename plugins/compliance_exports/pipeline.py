"""Glue between a DAG's tasks and the landing package (imported inside tasks only).

``land_export`` lands one raw object of a registry entry as its curated partition for
the planned slice's day, and records in the manifest what was asked of the vendor,
which jobs produced the file, and which interval (or, for a snapshot, which extraction
time) it stands for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance_exports.landing.manifest import LandingResult
    from compliance_exports.registry import ExportEntry


def slice_interval(planned: Mapping[str, Any]) -> dict[str, str]:
    """The manifest's ``data_interval``: the slice's bounds, and a snapshot's extraction time."""
    piece = planned["slice"]
    interval = {"start": piece["start"], "end": piece["end"]}
    if piece.get("snapshot"):
        interval["extracted_at"] = piece.get("extracted_at") or dt.datetime.now(dt.UTC).isoformat()
    return interval


def evidence_of_day(
    batches: Iterable[Sequence[Mapping[str, Any]] | None], day: str
) -> list[dict[str, Any]]:
    """The other originals of ``day``'s partition (e.g. audit PDFs) among mapped results.

    Each item is ``{"raw": RawObject, ...facts}`` (a PDF adds its ``window`` and
    ``expected_events``); the manifest lists ``kind``, the facts and the raw object's
    ``uri``, ``key``, ``sha256`` and ``size``.
    """
    return [
        {"kind": _kind(item["raw"]), **{k: v for k, v in item.items() if k != "raw"},
         **{k: item["raw"][k] for k in ("uri", "key", "sha256", "size")}}
        for batch in batches or []
        for item in batch or []
        if item["raw"]["day"] == day
    ]  # fmt: skip


def _kind(raw: Mapping[str, Any]) -> str:
    return str(raw.get("filename", "")).rsplit(".", 1)[-1].lower() or "file"


def land_export(
    entry: ExportEntry, raw: Mapping[str, Any], planned: Mapping[str, Any]
) -> LandingResult:
    from compliance_exports.landing.land import land_raw_object

    return land_raw_object(
        raw,
        dict(entry.schema),
        entry.partition(dt.date.fromisoformat(planned["day"])),
        aws_conn_id=entry.lake.aws_conn_id,
        bucket=entry.lake.bucket,
        sse=entry.lake.sse,
        kms_key_id=entry.lake.kms_key_id,
        data_interval=slice_interval(planned),
    )


def attach_export_evidence(
    entry: ExportEntry, planned: Mapping[str, Any], evidence: Sequence[Mapping[str, Any]]
) -> str:
    """Record the day's other originals (from :func:`evidence_of_day`) in its manifest."""
    from compliance_exports.landing.land import attach_evidence

    return attach_evidence(
        entry.partition(dt.date.fromisoformat(planned["day"])),
        evidence,
        aws_conn_id=entry.lake.aws_conn_id,
        bucket=entry.lake.bucket,
        sse=entry.lake.sse,
        kms_key_id=entry.lake.kms_key_id,
    )
