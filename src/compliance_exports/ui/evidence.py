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
parse_manifest`, :func:`~compliance_exports.verify.unpublished_day`), the keys the
landing code's (:class:`~compliance_exports.landing.layout.Partition`). S3 is read with
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
from typing import Any, TypeVar

from compliance_exports.core.vendor import ExportKind
from compliance_exports.landing.layout import MANIFEST_NAME, TOKEN, Partition, s3_uri
from compliance_exports.verify import GAP, parse_manifest, unpublished_day

log = logging.getLogger(__name__)
_V = TypeVar("_V")

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
_ANY_DAY = dt.date(2000, 1, 1)  # a Partition's prefix of one day, cut to the dataset's


def _cut(prefix: str, segment: str) -> str:
    """A :class:`Partition` prefix up to its ``<segment>=`` part: ``dt`` gives the
    dataset's prefix (every day's), ``vendor`` the zone's (``[<lake>/]curated/``).
    ``=`` is in no vendor, dataset or lake prefix (Partition checks), so it is unique."""
    return prefix[: prefix.index(f"/{segment}=") + 1]


def _is_partition(vendor: str, dataset: str) -> bool:
    """Whether the landing code could have written ``vendor``/``dataset`` (safe names)."""
    try:
        Partition(vendor, dataset, _ANY_DAY)
    except ValueError:
        return False
    return True


def read_object(client: Any, bucket: str, key: str) -> tuple[bytes, str]:
    """The body of ``s3://<bucket>/<key>`` and its ETag (one GetObject, stream closed);
    botocore's ``ClientError`` (e.g. ``NoSuchKey``) is the caller's."""
    response = client.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        return body.read(), str(response.get("ETag"))
    finally:
        body.close()


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

    @classmethod
    def retired(
        cls, vendor: str, dataset: str, aws_conn_id: str, bucket: str, prefix: str
    ) -> ExportTarget:
        """A dataset of a registry lake that no entry lands any more, ``<vendor>.<dataset>``
        (windowed, unless its manifests say it is a snapshot)."""
        return cls(
            name=f"{vendor}.{dataset}",
            vendor=vendor,
            dataset=dataset,
            kind=ExportKind.WINDOWED,
            dag_id=None,
            bucket=bucket,
            prefix=prefix,
            aws_conn_id=aws_conn_id,
            in_registry=False,
        )

    def partition(self, day: dt.date) -> Partition:
        """The landing code's keys of ``day``."""
        return Partition(self.vendor, self.dataset, day, self.prefix)

    @property
    def curated_base(self) -> str:
        """``[<prefix>/]curated/vendor=<v>/dataset=<d>/``: every day's curated keys."""
        return _cut(self.partition(_ANY_DAY).curated_prefix, "dt")

    @property
    def runs_base(self) -> str:
        """``[<prefix>/]_runs/vendor=<v>/dataset=<d>/``: every day's run records."""
        return _cut(self.partition(_ANY_DAY).run_records_prefix, "dt")

    def manifest_key(self, day: dt.date) -> str:
        return self.partition(day).manifest_key


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
    exports: frozenset[str] = frozenset()  # the trigger form's selection; empty: all

    def plans(self, target: ExportTarget, day: dt.date) -> bool:
        """Whether this run planned ``target``'s ``day``: its DAG's, selected, and one of
        its days (a snapshot's: the last)."""
        if self.dag_id != target.dag_id or (self.exports and target.name not in self.exports):
            return False
        if target.kind == ExportKind.SNAPSHOT:
            return self.snapshot_day == day
        return day in self.days


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

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:  # the reader's threads (and requests) count at once
            self.stats[name] += n

    @staticmethod
    def _kept(
        cached: Mapping[str, _V], base: str, first: dt.date, listed: Iterable[str]
    ) -> dict[str, _V]:
        """What a cache of ``base``'s keys keeps after a read from ``first`` on: the keys
        the read listed, and those of up to :data:`MAX_DAYS` before ``first`` (what a
        read of a longer window holds); older keys, and keys gone from the listing, go."""
        start = f"{base}dt={first.isoformat()}"
        oldest = f"{base}dt={(first - dt.timedelta(days=MAX_DAYS)).isoformat()}"
        live = set(listed)
        return {key: value for key, value in cached.items() if key in live or oldest <= key < start}

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
            self._count("lists")
            objects.extend(page.get("Contents", []))
        with self._lock:
            self._listings = {k: v for k, v in self._listings.items() if v[0] > now}
            self._listings[cache_key] = (now + self.listing_ttl, objects)
        return objects

    def lake_datasets(self, aws_conn_id: str, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """``(vendor, dataset)`` of every curated dataset in the lake (two delimited
        listings deep, cached like the others): retired exports keep their evidence.
        Names the landing code could not have written (unsafe key segments) are left out."""
        base = _cut(Partition("v", "d", _ANY_DAY, prefix).curated_prefix, "vendor")
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
                self._count("lists")
                for common in page.get("CommonPrefixes", []):
                    found.append(common["Prefix"][len(of) + len(name) + 1 :].rstrip("/"))
            return found

        found = [
            {"vendor": vendor, "dataset": dataset}
            for vendor in children(base, "vendor")
            for dataset in children(f"{base}vendor={vendor}/", "dataset")
            if _is_partition(vendor, dataset)
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
                data, etag = read_object(client, target.bucket, key)
                return key, etag, summarize_manifest(data, s3_uri(target.bucket, key))

            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(fetch)))) as pool:
                for key, etag, summary in pool.map(get, fetch):
                    known[key] = (etag, summary)
            self._count("manifest_gets", len(fetch))
        kept = self._kept(known, base, first, live)
        with self._lock:
            self._manifests[cache_id] = kept
        return {day: (key, kept[key][1]) for key, (day, _) in live.items() if key in kept}

    # run records ---------------------------------------------------------------------

    def run_records(
        self, target: ExportTarget, first: dt.date
    ) -> dict[dt.date, list[RunRecordRef]]:
        """``day -> records`` (oldest first) of the ``_runs/`` records from ``first`` on;
        the records' cache keeps what :meth:`_kept` says (as the manifests')."""
        base = target.runs_base
        found: dict[dt.date, list[RunRecordRef]] = {}
        listed = []
        for obj in self._list(target, base, first):
            listed.append(obj["Key"])
            match = _DAY_KEY.match(obj["Key"][len(base) :])
            if not match or not match.group(2).endswith(".json"):
                continue
            token = match.group(2).removesuffix(".json")
            if TOKEN.match(token):
                day = dt.date.fromisoformat(match.group(1))
                found.setdefault(day, []).append(RunRecordRef(obj["Key"], token))
        for records in found.values():
            records.sort(key=lambda record: record.token)
        cache_id = (target.bucket, base)
        with self._lock:
            if cache_id in self._records:
                self._records[cache_id] = self._kept(self._records[cache_id], base, first, listed)
        return found

    def record_runs(
        self, target: ExportTarget, records: Iterable[RunRecordRef]
    ) -> dict[str, tuple[str | None, str | None]]:
        """``key -> (dag_id, run_id)`` of each record (each fetched once, ever)."""
        cache_id = (target.bucket, target.runs_base)
        wanted = [record.key for record in records]
        with self._lock:
            known = self._records.get(cache_id, {})
            found = {key: known[key] for key in wanted if key in known}
        fetch = [key for key in dict.fromkeys(wanted) if key not in found]
        if fetch:
            client = self.client_for(target.aws_conn_id)

            def get(key: str) -> tuple[str, tuple[str | None, str | None]]:
                import json

                try:
                    data = json.loads(read_object(client, target.bucket, key)[0])
                except ValueError:
                    return key, (None, None)
                if not isinstance(data, dict):
                    return key, (None, None)
                return key, (data.get("dag_id"), data.get("run_id"))

            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(fetch)))) as pool:
                fetched = dict(pool.map(get, fetch))
            with self._lock:
                self._records.setdefault(cache_id, {}).update(fetched)
                self.stats["record_gets"] += len(fetched)
            found.update(fetched)
        return found

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

    # verify's rule: a windowed day is a gap; a snapshot day a gap when a run planned it
    # (the latest record first), else not run. The view refines a gap with what Airflow
    # knows (running, failed).
    planned_by = [s3_uri(target.bucket, record.key) for record in reversed(records)]
    verdict, problem = unpublished_day(
        target.kind, planned_by, s3_uri(target.bucket, target.manifest_key(day))
    )
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
            evidence.detail = problem or ""
            if target.kind != ExportKind.SNAPSHOT:  # verify's text: every day is a gap
                evidence.detail = f"a run planned this day ({planned_by[0]}); {problem}"
            if planned is not None:
                evidence.detail += f"; run {planned.run_id} is {planned.state}"
        return evidence
    own = [run for run in runs if run.plans(target, day)]
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
    if verdict == GAP:
        evidence.status = MISSING
        evidence.detail = problem or ""
    else:
        evidence.status = SKIPPED_SNAPSHOT
        evidence.detail = (
            "no run planned this snapshot day (a snapshot is taken only for a day that "
            "ended less than snapshot_grace before its run)"
        )
    return evidence
