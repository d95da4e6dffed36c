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
    from compliance_exports.landing.land import LakeOptions
    from compliance_exports.landing.manifest import LandingResult
    from compliance_exports.registry import ExportEntry


def slice_interval(planned: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, str]:
    """The manifest's ``data_interval``: the slice's bounds, and for a snapshot when the
    data was taken: the time the vendor says it produced the file, or else (named as
    such) when we downloaded it."""
    piece = planned["slice"]
    interval = {"start": piece["start"], "end": piece["end"]}
    if piece.get("snapshot"):
        if raw.get("produced_at"):
            interval["extracted_at"] = str(raw["produced_at"])
            interval["extracted_at_source"] = "vendor"
        else:
            downloaded = raw.get("downloaded_at") or dt.datetime.now(dt.UTC).isoformat()
            interval["extracted_at"] = str(downloaded)
            interval["extracted_at_source"] = "downloaded_at"
    return interval


def evidence_of_day(
    batches: Iterable[Sequence[Mapping[str, Any]] | None], day: str
) -> list[dict[str, Any]]:
    """The other originals of ``day``'s partition (e.g. audit PDFs) among mapped results.

    Each item is ``{"raw": RawObject, ...facts}`` (a PDF adds its ``window`` and
    ``expected_events``); the manifest lists ``kind``, the facts and the raw object's
    ``uri``, ``key``, ``sha256``, ``size``, ``version_id`` and ``downloaded_at``.
    """
    from compliance_exports.landing.manifest import evidence_entry

    return [
        evidence_entry(item["raw"], **{k: v for k, v in item.items() if k != "raw"})
        for batch in batches or []
        for item in batch or []
        if item["raw"]["day"] == day
    ]


def lake_options(entry: ExportEntry) -> LakeOptions:
    """The registry entry's ``lake`` block as the landing package takes it."""
    from compliance_exports.landing.land import LakeOptions

    lake = entry.lake
    return LakeOptions(
        aws_conn_id=lake.aws_conn_id,
        bucket=lake.bucket,
        sse=lake.sse,
        kms_key_id=lake.kms_key_id,
        keep_versions=lake.keep_versions,
        object_lock_mode=lake.object_lock_mode,
        object_lock_days=lake.object_lock_days,
    )


def land_export(
    entry: ExportEntry,
    raw: Mapping[str, Any],
    planned: Mapping[str, Any],
    run_params: Mapping[str, Any] | None = None,
) -> LandingResult:
    from compliance_exports.landing.land import land_raw_object

    return land_raw_object(
        raw,
        dict(entry.schema),
        entry.partition(dt.date.fromisoformat(planned["day"])),
        lake=lake_options(entry),
        data_interval=slice_interval(planned, raw),
        export=entry.name,
        evidence_expected=entry.vendor.evidence_kinds(entry, run_params or {}),
        quality=entry.quality,
        primary_key=entry.primary_key,
    )


def attach_export_evidence(
    entry: ExportEntry, planned: Mapping[str, Any], evidence: Sequence[Mapping[str, Any]]
) -> str:
    """Record the day's other originals (from :func:`evidence_of_day`) in a new version."""
    from compliance_exports.landing.land import attach_evidence

    return attach_evidence(
        entry.partition(dt.date.fromisoformat(planned["day"])),
        evidence,
        lake=lake_options(entry),
    )


def record_planned_days(
    entry: ExportEntry, items: Sequence[Mapping[str, Any]], context: Mapping[str, Any]
) -> None:
    """Note in the lake that this run planned each day (``_runs/``): ``verify`` then
    knows a snapshot day that ran but landed nothing from one that never ran."""
    import json

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from compliance_exports.landing.lake import ServerSideEncryption
    from compliance_exports.landing.layout import new_token

    client = S3Hook(aws_conn_id=entry.lake.aws_conn_id).get_conn()
    dag_run = context.get("dag_run")
    for item in items:
        partition = entry.partition(dt.date.fromisoformat(item["day"]))
        record = {
            "export": entry.name,
            "vendor": entry.vendor.name,
            "dataset": entry.dataset,
            "day": item["day"],
            "kind": entry.kind.value,
            "dag_id": getattr(dag_run, "dag_id", None),
            "run_id": getattr(dag_run, "run_id", None),
            "planned_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        client.put_object(
            Bucket=entry.lake.bucket,
            Key=partition.run_record_key(new_token()),
            Body=json.dumps(record).encode(),
            ContentType="application/json",
            **ServerSideEncryption(entry.lake.sse, entry.lake.kms_key_id).extra_args(),
        )


def verify_planned_days(entry: ExportEntry, planned: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``verify`` task: check this run's days of ``entry``; raise on any problem."""
    import logging

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk.exceptions import AirflowFailException

    from compliance_exports.verify import verify_exports

    days = sorted(dt.date.fromisoformat(item["day"]) for item in planned)
    if not days:
        return {"ok": True, "partitions": []}
    client = S3Hook(aws_conn_id=entry.lake.aws_conn_id).get_conn()
    report = verify_exports([entry], days[0], days[-1], client)
    logging.getLogger(__name__).info("verify %s:\n%s", entry.name, report.table())
    if not report.ok:  # the lake will not heal by itself: no retry
        raise AirflowFailException(
            f"verify found integrity problems in {entry.name}:\n{report.table()}"
        )
    return report.to_dict()


def publish_export_changes(entry: ExportEntry, planned: Mapping[str, Any]) -> dict[str, Any] | None:
    """For a snapshot with a ``primary_key``: publish what changed since the previous
    published day (``<dataset>__changes``); ``None`` for any other export."""
    from compliance_exports.core.vendor import ExportKind

    if entry.kind is not ExportKind.SNAPSHOT or not entry.primary_key:
        return None
    from compliance_exports.landing.land import publish_changes

    return publish_changes(
        entry.partition(dt.date.fromisoformat(planned["day"])),
        entry.primary_key,
        lake=lake_options(entry),
        export=entry.name,
    )
