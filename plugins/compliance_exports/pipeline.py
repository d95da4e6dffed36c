"""Glue between a DAG's tasks and the landing package (imported inside tasks only).

``land_export`` lands one fetched raw object of a registry entry as its curated
partition for the slice's day, and records in the manifest what was asked of the
vendor and which interval (or, for a snapshot, which extraction time) it stands for.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compliance_exports.landing.manifest import LandingResult
    from compliance_exports.registry import ExportEntry

log = logging.getLogger(__name__)
#: Airflow's ``[core] max_map_length`` default: no mapped task may have more instances.
MAX_MAPPED_TASKS = 1024


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
    evidence: Sequence[Mapping[str, Any]] = (),
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
        evidence=list(evidence),
    )


def plan_audit_pdfs(
    entry: ExportEntry, csvs: Sequence[Mapping[str, Any]], items: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Count each slice's events from its CSV in the raw zone and plan its PDF windows.

    Returns batches ``{"day", "windows"}`` for the mapped PDF fetch: one window per batch
    unless there are more windows than Airflow may map, then as few as fit.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from compliance_exports.audit import plan_pdf_windows, read_counting_csv
    from compliance_exports.audit.window import parse_ms

    client = S3Hook(aws_conn_id=entry.lake.aws_conn_id).get_conn()
    limit = entry.params.get("window_limit", 5000)
    margin = entry.params.get("window_margin", 0)
    per_day: list[tuple[str, list[dict[str, Any]]]] = []
    for raw, item in zip(csvs, items, strict=True):
        body = client.get_object(Bucket=raw["bucket"], Key=raw["key"])["Body"]
        events = read_counting_csv(body.iter_chunks(1 << 20))
        start, end = (parse_ms(item["submit"][k]) for k in ("range_start", "range_end"))
        windows = plan_pdf_windows(events, start, end, limit=limit, margin=margin)
        log.info("%s dt=%s: %d events -> %d PDF windows (limit %d, margin %d)",
                 entry.name, item["day"], len(events), len(windows), limit, margin)  # fmt: skip
        per_day.append((item["day"], [w.to_dict() for w in windows]))
    return batch_windows(per_day, MAX_MAPPED_TASKS)


def batch_windows(
    per_day: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], max_batches: int
) -> list[dict[str, Any]]:
    """Group each day's windows into batches, at most ``max_batches`` in all."""
    total = sum(len(w) for _, w in per_day)
    size = max(1, math.ceil(total / max(1, max_batches - len(per_day))))
    return [
        {"day": day, "windows": list(windows[i : i + size])}
        for day, windows in per_day
        for i in range(0, len(windows), size)
    ]


def landed_pdfs(ti: Any, task_id: str, day: str) -> list[dict[str, Any]]:
    """The PDFs the mapped PDF fetch landed for ``day`` (none when it was skipped)."""
    batches = ti.xcom_pull(task_ids=[task_id])  # a list: every map index's return value
    return [
        {"kind": "pdf", "window": p["window"], "expected_events": p["expected_events"],
         **{k: p["raw"][k] for k in ("uri", "key", "sha256", "size")}}
        for batch in batches or []
        for p in batch or []
        if p["raw"]["day"] == day
    ]  # fmt: skip
