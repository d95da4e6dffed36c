"""The evidence calendar: per export and day, what the lake (and Airflow) hold.

Statuses of one export's day (docs/EVIDENCE_VIEW.md):

* ``landed``: a live manifest (``_manifest.json``) is published for the day;
* ``quality_warning``: landed, and the manifest's ``quality`` has a check with status
  ``warn`` (docs/QUALITY.md);
* ``failed``: no live manifest, and a run planned the day (a ``_runs/`` record) or a
  DAG run has a failed task of the export for the day (Airflow's metadata);
* ``running``: no live manifest yet, and the run that planned the day is still going;
* ``skipped_snapshot``: a snapshot export's day no run planned (the plan skips snapshot
  days older than ``snapshot_grace``; verify's ``not_run``);
* ``missing``: a windowed export's day with no manifest and no run (verify's ``gap``).

The manifest and run-record reading is verify's (:func:`compliance_exports.verify.
parse_manifest`, :func:`~compliance_exports.verify.unpublished_day`). S3 is read with
one ListObjectsV2 (paginated) per export for its curated keys and one for its ``_runs/``
records, kept ``listing_ttl`` seconds; a manifest is fetched once per ETag (its summary
is cached until the listing shows another ETag), a run record once (its key is never
written again). A page of 10 exports x 90 days is then 20 listings on a warm cache.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from compliance_exports.core.vendor import ExportKind
from compliance_exports.landing.layout import MANIFEST_NAME, TOKEN, s3_uri
from compliance_exports.verify import GAP, parse_manifest, unpublished_day

log = logging.getLogger(__name__)

LANDED = "landed"
QUALITY_WARNING = "quality_warning"
FAILED = "failed"
RUNNING = "running"
SKIPPED_SNAPSHOT = "skipped_snapshot"
MISSING = "missing"
STATUSES = (LANDED, QUALITY_WARNING, FAILED, RUNNING, SKIPPED_SNAPSHOT, MISSING)

DEFAULT_DAYS = 90
MAX_DAYS = 366
_DAY_KEY = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})/(.+)$")
_ACTIVE_STATES = frozenset({"queued", "running"})


# --- what the calendar is built from -------------------------------------------------


@dataclass(frozen=True)
class ExportTarget:
    """One export as the view reads it: where its partitions lie, and its DAG."""

    name: str
    vendor: str
    dataset: str
    kind: ExportKind
    dag_id: str | None
    bucket: str
    prefix: str
    aws_conn_id: str
    timezone: str = "UTC"
    in_registry: bool = True

    @classmethod
    def of(cls, entry: Any) -> ExportTarget:
        """The target of a registry :class:`~compliance_exports.registry.ExportEntry`."""
        return cls(
            name=entry.name,
            vendor=entry.vendor.name,
            dataset=entry.dataset,
            kind=entry.kind,
            dag_id=entry.dag_id,
            bucket=entry.lake.bucket,
            prefix=entry.lake.prefix,
            aws_conn_id=entry.lake.aws_conn_id,
            timezone=entry.timezone,
        )

    def _base(self, zone: str) -> str:
        parts = [self.prefix.strip("/"), zone, f"vendor={self.vendor}/dataset={self.dataset}"]
        return "/".join(p for p in parts if p) + "/"

    @property
    def curated_base(self) -> str:
        """``[<prefix>/]curated/vendor=<v>/dataset=<d>/``: every day's curated keys."""
        return self._base("curated")

    @property
    def runs_base(self) -> str:
        return self._base("_runs")

    def manifest_key(self, day: dt.date) -> str:
        return f"{self.curated_base}dt={day.isoformat()}/{MANIFEST_NAME}"


@dataclass(frozen=True)
class AirflowRun:
    """A DAG run from Airflow's metadata: which days it covered, and for which exports
    a task failed (``failed`` or ``upstream_failed``)."""

    dag_id: str
    run_id: str
    state: str
    days: frozenset[dt.date]
    snapshot_day: dt.date | None = None  # the one day a snapshot is taken for in this run
    failed_exports: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ManifestSummary:
    """What the calendar shows of a live manifest (cached per ETag)."""

    rows: int | None
    version: str | None
    published_at: str | None
    run_token: str | None
    export: str | None
    snapshot: bool
    quality_warnings: tuple[str, ...]
    problem: str | None = None  # unreadable: not JSON, not an object


@dataclass(frozen=True)
class RunRecordRef:
    key: str
    token: str


# --- what it shows ----------------------------------------------------------------------


@dataclass
class DayEvidence:
    day: str
    status: str
    rows: int | None = None
    version: str | None = None
    published_at: str | None = None
    manifest: bool = False  # the app serves it at /manifest/<export>/<day>
    dag_id: str | None = None
    run_id: str | None = None
    detail: str = ""


@dataclass
class ExportEvidence:
    export: str
    vendor: str
    dataset: str
    kind: str
    dag_id: str | None
    bucket: str
    in_registry: bool
    days: list[DayEvidence] = field(default_factory=list)
    last_landed_at: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def window(last: dt.date, days: int = DEFAULT_DAYS) -> list[dt.date]:
    """``days`` calendar days ending with ``last``, oldest first."""
    return [last - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]


def token_time(token: str) -> dt.datetime:
    """When a run token (``YYYYMMDDTHHMMSSZ-<hex>``) was made, to the second."""
    return dt.datetime.strptime(token[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def summarize_manifest(data: bytes, uri: str) -> ManifestSummary:
    manifest, problem = parse_manifest(data, uri)
    if manifest is None:
        return ManifestSummary(None, None, None, None, None, False, (), problem)
    warnings = tuple(
        f"{item.get('check')}: {item.get('detail')}"
        for item in manifest.get("quality") or []
        if isinstance(item, Mapping) and item.get("status") == "warn"
    )
    rows = manifest.get("rows")
    interval = manifest.get("data_interval") or {}

    def text(name: str) -> str | None:
        value = manifest.get(name)
        return value if isinstance(value, str) else None

    return ManifestSummary(
        rows=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
        version=text("version"),
        published_at=text("published_at"),
        run_token=text("run_token"),
        export=text("export"),
        snapshot=isinstance(interval, Mapping) and "extracted_at" in interval,
        quality_warnings=warnings,
    )


# --- S3, cached -------------------------------------------------------------------------


class EvidenceReader:
    """Reads exports' manifests and run records from S3, caching what is expensive.

    ``client_for(aws_conn_id)`` gives a boto3 S3 client (thread-safe; the app's is an
    Airflow ``S3Hook``'s). Safe to share between requests (one lock per cache).
    """

    def __init__(
        self,
        client_for: Callable[[str], Any],
        *,
        listing_ttl: float = 15.0,
        workers: int = 10,  # botocore's default connection pool holds 10
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_for = client_for
        self.listing_ttl = listing_ttl
        self.workers = workers
        self.clock = clock
        self._lock = threading.Lock()
        self._listings: dict[tuple[str, str, str, str], tuple[float, list[dict[str, Any]]]] = {}
        #: (bucket, base) -> {key: (etag, summary)}: only the keys of the latest listing
        self._manifests: dict[tuple[str, str], dict[str, tuple[str, ManifestSummary]]] = {}
        #: (bucket, base) -> {key: (dag_id, run_id)}: run records are never rewritten
        self._records: dict[tuple[str, str], dict[str, tuple[str | None, str | None]]] = {}
        self.stats = {"lists": 0, "manifest_gets": 0, "record_gets": 0}

    def clear(self) -> None:
        with self._lock:
            self._listings.clear()
            self._manifests.clear()
            self._records.clear()

    # listings ----------------------------------------------------------------------

    def _list(self, target: ExportTarget, base: str, first: dt.date) -> list[dict[str, Any]]:
        """Every object under ``base`` from ``dt=<first>`` on (ListObjectsV2, cached)."""
        cache_key = (target.aws_conn_id, target.bucket, base, first.isoformat())
        now = self.clock()
        with self._lock:
            cached = self._listings.get(cache_key)
            if cached and cached[0] > now:
                return cached[1]
        client = self.client_for(target.aws_conn_id)
        paginator = client.get_paginator("list_objects_v2")
        objects: list[dict[str, Any]] = []
        pages = paginator.paginate(
            Bucket=target.bucket, Prefix=base, StartAfter=f"{base}dt={first.isoformat()}"
        )
        for page in pages:
            self.stats["lists"] += 1
            objects.extend(page.get("Contents", []))
        with self._lock:
            self._listings = {k: v for k, v in self._listings.items() if v[0] > now}
            self._listings[cache_key] = (now + self.listing_ttl, objects)
        return objects

    def lake_datasets(self, aws_conn_id: str, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """``(vendor, dataset)`` of every curated dataset in the lake (two delimited
        listings deep, cached like the others): retired exports keep their evidence."""
        base = "/".join(p for p in (prefix.strip("/"), "curated") if p) + "/"
        cache_key = (aws_conn_id, bucket, base, "datasets")
        now = self.clock()
        with self._lock:
            cached = self._listings.get(cache_key)
            if cached and cached[0] > now:
                return [(o["vendor"], o["dataset"]) for o in cached[1]]
        client = self.client_for(aws_conn_id)
        paginator = client.get_paginator("list_objects_v2")

        def children(of: str, name: str) -> list[str]:
            found = []
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{of}{name}=", Delimiter="/"):
                self.stats["lists"] += 1
                for common in page.get("CommonPrefixes", []):
                    found.append(common["Prefix"][len(of) + len(name) + 1 :].rstrip("/"))
            return found

        found = [
            {"vendor": vendor, "dataset": dataset}
            for vendor in children(base, "vendor")
            for dataset in children(f"{base}vendor={vendor}/", "dataset")
        ]
        with self._lock:
            self._listings[cache_key] = (now + self.listing_ttl, found)
        return [(o["vendor"], o["dataset"]) for o in found]

    # manifests -----------------------------------------------------------------------

    def manifests(
        self, target: ExportTarget, first: dt.date
    ) -> dict[dt.date, tuple[str, ManifestSummary]]:
        """``day -> (key, summary)`` of each live manifest from ``first`` on."""
        base = target.curated_base
        live: dict[str, tuple[dt.date, str]] = {}
        for obj in self._list(target, base, first):
            match = _DAY_KEY.match(obj["Key"][len(base) :])
            if match and match.group(2) == MANIFEST_NAME:
                live[obj["Key"]] = (dt.date.fromisoformat(match.group(1)), str(obj.get("ETag")))
        cache_id = (target.bucket, base)
        with self._lock:
            known = dict(self._manifests.get(cache_id, {}))
        fetch = [key for key, (_, etag) in live.items() if known.get(key, ("",))[0] != etag]
        if fetch:
            client = self.client_for(target.aws_conn_id)

            def get(key: str) -> tuple[str, str, ManifestSummary]:
                response = client.get_object(Bucket=target.bucket, Key=key)
                body = response["Body"]
                try:
                    data = body.read()
                finally:
                    body.close()
                etag = str(response.get("ETag"))
                return key, etag, summarize_manifest(data, s3_uri(target.bucket, key))

            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(fetch)))) as pool:
                for key, etag, summary in pool.map(get, fetch):
                    self.stats["manifest_gets"] += 1
                    known[key] = (etag, summary)
        current = {key: known[key] for key in live if key in known}
        # keep what a read of a longer window holds before this one (up to MAX_DAYS)
        start = f"{base}dt={first.isoformat()}"
        oldest = f"{base}dt={(first - dt.timedelta(days=MAX_DAYS)).isoformat()}"
        older = {key: value for key, value in known.items() if oldest <= key < start}
        with self._lock:
            self._manifests[cache_id] = {**older, **current}
        return {live[key][0]: (key, current[key][1]) for key in current}

    # run records ---------------------------------------------------------------------

    def run_records(
        self, target: ExportTarget, first: dt.date
    ) -> dict[dt.date, list[RunRecordRef]]:
        """``day -> records`` (oldest first) of the ``_runs/`` records from ``first`` on."""
        base = target.runs_base
        found: dict[dt.date, list[RunRecordRef]] = {}
        for obj in self._list(target, base, first):
            match = _DAY_KEY.match(obj["Key"][len(base) :])
            if not match or not match.group(2).endswith(".json"):
                continue
            token = match.group(2).removesuffix(".json")
            if TOKEN.match(token):
                day = dt.date.fromisoformat(match.group(1))
                found.setdefault(day, []).append(RunRecordRef(obj["Key"], token))
        for records in found.values():
            records.sort(key=lambda record: record.token)
        return found

    def record_runs(
        self, target: ExportTarget, records: Iterable[RunRecordRef]
    ) -> dict[str, tuple[str | None, str | None]]:
        """``key -> (dag_id, run_id)`` of each record (each fetched once, ever)."""
        cache_id = (target.bucket, target.runs_base)
        wanted = list(records)
        with self._lock:
            known = self._records.setdefault(cache_id, {})
            fetch = [record.key for record in wanted if record.key not in known]
        if fetch:
            client = self.client_for(target.aws_conn_id)

            def get(key: str) -> tuple[str, tuple[str | None, str | None]]:
                import json

                body = client.get_object(Bucket=target.bucket, Key=key)["Body"]
                try:
                    data = json.loads(body.read())
                except ValueError:
                    return key, (None, None)
                finally:
                    body.close()
                if not isinstance(data, dict):
                    return key, (None, None)
                return key, (data.get("dag_id"), data.get("run_id"))

            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(fetch)))) as pool:
                results = list(pool.map(get, fetch))
            with self._lock:
                for key, run in results:
                    self.stats["record_gets"] += 1
                    known[key] = run
        with self._lock:
            return {record.key: known.get(record.key, (None, None)) for record in wanted}

    # the calendar --------------------------------------------------------------------

    def export_evidence(
        self,
        target: ExportTarget,
        days: Sequence[dt.date],
        runs: Sequence[AirflowRun] = (),
    ) -> ExportEvidence:
        """The calendar of ``target`` over ``days`` (oldest first); ``runs`` are the DAG
        runs Airflow's metadata knows of (for failures and runs still going)."""
        from botocore.exceptions import BotoCoreError, ClientError

        result = ExportEvidence(
            export=target.name,
            vendor=target.vendor,
            dataset=target.dataset,
            kind=target.kind.value,
            dag_id=target.dag_id,
            bucket=target.bucket,
            in_registry=target.in_registry,
        )
        try:
            manifests = self.manifests(target, days[0])
            records = self.run_records(target, days[0])
        except (ClientError, BotoCoreError) as exc:
            result.error = f"cannot read s3://{target.bucket}/{target.curated_base}: {exc}"
            result.days = [DayEvidence(day.isoformat(), MISSING) for day in days]
            result.counts = _counts(result.days)
            return result
        chosen = {day: _record_for(records.get(day, []), manifests.get(day)) for day in set(days)}
        refs = self.record_runs(target, [ref for ref in chosen.values() if ref is not None])
        listed = {ref.key for day_records in records.values() for ref in day_records}
        with self._lock:  # forget the records that left the window
            cached = self._records.get((target.bucket, target.runs_base), {})
            for key in [key for key in cached if key not in listed]:
                del cached[key]
        for day in days:
            ref = chosen[day]
            result.days.append(
                classify_day(
                    target,
                    day,
                    manifests.get(day, (None, None))[1],
                    records.get(day, []),
                    refs.get(ref.key) if ref is not None else None,
                    runs,
                )
            )
        shown = set(days)
        landed = [
            summary.published_at
            for day, (_, summary) in manifests.items()
            if day in shown and summary.published_at and summary.problem is None
        ]
        result.last_landed_at = max(landed, key=_instant) if landed else None
        result.counts = _counts(result.days)
        return result


def _instant(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _record_for(
    records: Sequence[RunRecordRef], manifest: tuple[str, ManifestSummary] | None
) -> RunRecordRef | None:
    """The run record behind a day: for a published day the last one planned before
    the manifest was published, else the latest."""
    if not records:
        return None
    if manifest and manifest[1].published_at:
        published = _instant(manifest[1].published_at)
        before = [r for r in records if token_time(r.token) <= published]
        if before:
            return before[-1]
    return records[-1]


def _counts(days: Sequence[DayEvidence]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for day in days:
        counts[day.status] = counts.get(day.status, 0) + 1
    return counts


def classify_day(
    target: ExportTarget,
    day: dt.date,
    manifest: ManifestSummary | None,
    records: Sequence[RunRecordRef],
    record_run: tuple[str | None, str | None] | None,
    runs: Sequence[AirflowRun] = (),
) -> DayEvidence:
    """One day's status (the module docstring's rules)."""
    evidence = DayEvidence(day.isoformat(), MISSING)
    if record_run:
        evidence.dag_id, evidence.run_id = record_run
    if manifest is not None:
        if manifest.problem:
            evidence.status = FAILED
            evidence.detail = manifest.problem
            evidence.manifest = True
            return evidence
        evidence.rows = manifest.rows
        evidence.version = manifest.version
        evidence.published_at = manifest.published_at
        evidence.manifest = True
        if manifest.quality_warnings:
            evidence.status = QUALITY_WARNING
            evidence.detail = "; ".join(manifest.quality_warnings)
        else:
            evidence.status = LANDED
            evidence.detail = f"version {manifest.version} published {manifest.published_at}"
        return evidence

    by_id = {(run.dag_id, run.run_id): run for run in runs}
    planned = None
    if record_run and record_run[0] and record_run[1]:
        planned = by_id.get((record_run[0], record_run[1]))
    if records:
        if planned is not None and planned.state in _ACTIVE_STATES:
            evidence.status = RUNNING
            evidence.detail = f"run {planned.run_id} planned this day and is {planned.state}"
        else:
            evidence.status = FAILED
            uri = s3_uri(target.bucket, records[-1].key)
            evidence.detail = f"a run planned this day ({uri}) but no manifest was published"
            if planned is not None:
                evidence.detail += f"; run {planned.run_id} is {planned.state}"
        return evidence
    own = [
        run
        for run in runs
        if run.dag_id == target.dag_id
        and (run.snapshot_day == day if target.kind == ExportKind.SNAPSHOT else day in run.days)
    ]
    failed = [run for run in own if target.name in run.failed_exports]
    if failed:
        run = failed[-1]
        evidence.status = FAILED
        evidence.dag_id, evidence.run_id = run.dag_id, run.run_id
        evidence.detail = f"a task of {target.name} failed in run {run.run_id}"
        return evidence
    active = [run for run in own if run.state in _ACTIVE_STATES]
    if active:
        run = active[-1]
        evidence.status = RUNNING
        evidence.dag_id, evidence.run_id = run.dag_id, run.run_id
        evidence.detail = f"run {run.run_id} covers this day and is {run.state}"
        return evidence
    status, problem = unpublished_day(
        target.kind, [], s3_uri(target.bucket, target.manifest_key(day))
    )
    if status == GAP:
        evidence.status = MISSING
        evidence.detail = problem or ""
    else:
        evidence.status = SKIPPED_SNAPSHOT
        evidence.detail = (
            "no run planned this snapshot day (a snapshot is taken only for a day that "
            "ended less than snapshot_grace before its run)"
        )
    return evidence
