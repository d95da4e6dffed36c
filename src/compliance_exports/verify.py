"""Verify the lake against its manifests: ``python -m compliance_exports verify``.

An auditor's check, with read access only (``s3:GetObject``, ``s3:GetObjectVersion``,
``s3:ListBucket``, ``s3:ListBucketVersions``) and no Airflow: for every export and day it
reads the live manifest (version 2, see ``landing/manifest.schema.json``), validates it,
compares it with its immutable copy under ``_versions/``, re-hashes every object the
manifest names (raw original, evidence, rejected rows, Parquet parts; exactly the
recorded version on a versioned bucket), reads each part's Parquet footer for its row
count, and checks the audit PDFs' windows (no overlap, no hole, their event counts sum to
the day's rows). See docs/VERIFY.md.

Only ``get_object``, ``head_object`` and ``list_objects_v2`` are called, on a boto3 S3
client the caller gives (the CLI's own, or an Airflow hook's). Keys come from the
manifest and :class:`~compliance_exports.landing.layout.Partition`, never from listing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from compliance_exports.core.vendor import ExportKind
from compliance_exports.landing.layout import TOKEN, Partition, s3_uri
from compliance_exports.landing.manifest import manifest_problems

if TYPE_CHECKING:
    from compliance_exports.registry import ExportEntry

__all__ = [
    "FAILED",
    "GAP",
    "NOT_RUN",
    "OK",
    "STATUSES",
    "WARNING",
    "PartitionCheck",
    "VerifyError",
    "VerifyReport",
    "check_pdf_windows",
    "parse_manifest",
    "unpublished_day",
    "verify_exports",
]

OK = "ok"
WARNING = "warning"
FAILED = "failed"
GAP = "gap"
NOT_RUN = "not_run"
STATUSES = (OK, WARNING, FAILED, GAP, NOT_RUN)
PROBLEM_STATUSES = frozenset({FAILED, GAP})

_CHUNK = 1 << 20  # streaming hash: 1 MiB at a time, never a whole object in memory
_TAIL = 1 << 20  # the end of a part kept while hashing it: its Parquet footer, usually
_PARQUET_MAGIC = b"PAR1"
_MS = dt.timedelta(milliseconds=1)
_MAX_SCHEMA_ERRORS = 3
_MAX_LISTED = 5  # overlaps or holes named one by one, then "and N more"
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
# Errors that make every read fail the same way: verify cannot run at all.
_FATAL = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "NoSuchBucket",
        "AllAccessDisabled",
    }
)


class VerifyError(RuntimeError):
    """Verify cannot run at all (no credentials, endpoint unreachable, no such bucket)."""


# --- results ---------------------------------------------------------------------------


@dataclass
class PartitionCheck:
    """What verify found for one export's partition of one day."""

    export: str
    day: dt.date
    status: str
    rows: int | None
    version: str | None
    objects: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manifest: str | None = None  # the live manifest's s3:// URI

    def to_dict(self) -> dict[str, Any]:
        return {
            "export": self.export,
            "day": self.day.isoformat(),
            "status": self.status,
            "rows": self.rows,
            "version": self.version,
            "objects": self.objects,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "manifest": self.manifest,
        }

    @property
    def first_problem(self) -> str:
        if self.problems:
            return self.problems[0]
        if self.warnings:
            return f"warning: {self.warnings[0]}"
        if self.status == NOT_RUN:
            return "no manifest and no run record: no run planned this day"
        return ""


@dataclass
class VerifyReport:
    """Every partition checked, in (export, day) order."""

    partitions: list[PartitionCheck]
    first: dt.date | None = None
    last: dt.date | None = None

    @property
    def ok(self) -> bool:
        """No integrity problem (no ``failed`` or ``gap``); warnings are allowed."""
        return not any(check.status in PROBLEM_STATUSES for check in self.partitions)

    def summary(self) -> dict[str, Any]:
        counts = {status: 0 for status in STATUSES}
        for check in self.partitions:
            counts[check.status] += 1
        return {
            "partitions": len(self.partitions),
            "exports": len({check.export for check in self.partitions}),
            **counts,
            "objects": sum(check.objects for check in self.partitions),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from": self.first.isoformat() if self.first else None,
            "to": self.last.isoformat() if self.last else None,
            "partitions": [check.to_dict() for check in self.partitions],
            "summary": self.summary(),
        }

    def summary_line(self) -> str:
        s = self.summary()
        span = ""
        if self.first and self.last:
            span = f" {self.first}" + (f"..{self.last}" if self.last != self.first else "")
        counts = ", ".join(f"{s[status]} {status.replace('_', ' ')}" for status in STATUSES)
        verdict = "OK: no integrity problem" if self.ok else "INTEGRITY PROBLEMS FOUND"
        return (
            f"{s['partitions']} partition(s) of {s['exports']} export(s){span}: {counts}; "
            f"{s['objects']} object(s) checked. {verdict}"
        )

    def table(self, width: int = 100) -> str:
        """A table (export, day, status, rows, objects, first problem), every problem and
        warning of the partitions that have some, and the summary line."""
        header = ("EXPORT", "DAY", "STATUS", "ROWS", "OBJECTS", "FIRST PROBLEM")
        rows = [
            (
                check.export,
                check.day.isoformat(),
                check.status,
                "-" if check.rows is None else str(check.rows),
                str(check.objects),
                _shorten(check.first_problem, width),
            )
            for check in self.partitions
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
        right = {3, 4}

        def line(cells: Sequence[str]) -> str:
            out = [
                cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                for i, cell in enumerate(cells[:-1])
            ]
            return "  ".join([*out, cells[-1]]).rstrip()

        lines = [line(header), *(line(row) for row in rows)]
        details = [check for check in self.partitions if check.problems or check.warnings]
        if details:
            lines.append("")
        for check in details:
            lines.append(f"{check.export} {check.day} ({check.status}):")
            lines += [f"  problem: {problem}" for problem in check.problems]
            lines += [f"  warning: {warning}" for warning in check.warnings]
        lines += ["", self.summary_line()]
        return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --- entry point -----------------------------------------------------------------------


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    if last < first:
        raise ValueError(f"the last day {last} is before the first {first}")
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def verify_exports(
    entries: Sequence[ExportEntry],
    first: dt.date,
    last: dt.date,
    client: Any,
    *,
    workers: int = 8,
) -> VerifyReport:
    """Verify every entry's partition of every day in ``[first, last]`` with ``client`` (a
    boto3 S3 client; each entry's bucket is ``entry.lake.bucket``).

    Partitions are checked ``workers`` at a time (boto3 clients are thread-safe). Raises
    :class:`VerifyError` when S3 cannot be used at all (credentials, endpoint, bucket).
    """
    tasks = [(entry, day) for entry in entries for day in days_between(first, last)]
    if not tasks:
        return VerifyReport([], first, last)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks)))) as pool:
        checks = list(pool.map(lambda task: _PartitionVerifier(client, *task).run(), tasks))
    return VerifyReport(checks, first, last)


# --- shared with the evidence view (compliance_exports.ui.evidence) ----------------------


def parse_manifest(data: bytes, uri: str) -> tuple[dict[str, Any] | None, str | None]:
    """The live manifest document read from ``uri``, or (None, why it cannot be read)."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        return None, f"the manifest {uri} is not JSON: {exc}"
    if not isinstance(manifest, dict):
        return None, f"the manifest {uri} is not a JSON object"
    return manifest, None


def unpublished_day(
    kind: ExportKind, run_records: Sequence[str], manifest_uri: str
) -> tuple[str, str | None]:
    """``(status, problem)`` of a day that has no live manifest.

    A windowed export has a partition for every day: the day is a :data:`GAP`. A snapshot
    is taken only for days a run planned (``_runs/`` records, ``run_records``, their
    URIs): planned but unpublished is a :data:`GAP`; never planned is :data:`NOT_RUN`
    (the plan skipped it, e.g. a backfill older than ``snapshot_grace``), no problem.
    """
    if kind != ExportKind.SNAPSHOT:
        return GAP, (
            f"no manifest at {manifest_uri}: the day was never published "
            f"(a {kind.value} export has a partition for every day)"
        )
    if run_records:
        return GAP, (
            f"a run planned this day ({run_records[0]}) "
            f"but no manifest was published at {manifest_uri}"
        )
    return NOT_RUN, None


# --- one partition ---------------------------------------------------------------------


@dataclass
class _Read:
    """What streaming an object gave: its hash, size, version, and last bytes."""

    sha256: str
    size: int
    version_id: str | None
    etag: str | None
    tail: bytes


class _PartitionVerifier:
    def __init__(self, client: Any, entry: ExportEntry, day: dt.date) -> None:
        self.client = client
        self.entry = entry
        self.bucket = entry.lake.bucket
        self.partition: Partition = entry.partition(day)
        self.check = PartitionCheck(
            export=entry.name,
            day=day,
            status=OK,
            rows=None,
            version=None,
            objects=0,
            manifest=s3_uri(self.bucket, self.partition.manifest_key),
        )

    # S3 calls: every one goes through here, so auth/endpoint errors end the whole run.
    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            if _code(exc) in _FATAL:
                raise VerifyError(f"s3 {method} on bucket {kwargs.get('Bucket')}: {exc}") from exc
            raise
        except BotoCoreError as exc:
            raise VerifyError(f"cannot use S3: {exc}") from exc

    def problem(self, text: str) -> None:
        self.check.problems.append(text)

    def warning(self, text: str) -> None:
        self.check.warnings.append(text)

    def run(self) -> PartitionCheck:
        from botocore.exceptions import ClientError

        check = self.check
        try:
            self._verify()
        except ClientError as exc:
            self.problem(f"cannot read from s3://{self.bucket}: {_describe(exc)}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.problem(f"verify could not check {check.manifest}: {type(exc).__name__}: {exc}")
        if check.status == OK:
            check.status = FAILED if check.problems else WARNING if check.warnings else OK
        return check

    def _verify(self) -> None:
        from botocore.exceptions import ClientError

        check, partition = self.check, self.partition
        uri = check.manifest
        try:
            live = self._read_small(partition.manifest_key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                self._no_manifest()
            else:
                self.problem(f"cannot read the manifest {uri}: {_describe(exc)}")
            return
        check.objects += 1
        manifest, unreadable = parse_manifest(live, str(uri))
        if manifest is None:
            self.problem(str(unreadable))
            return
        if isinstance(manifest.get("rows"), int):
            check.rows = manifest["rows"]
        if isinstance(manifest.get("version"), str):
            check.version = manifest["version"]
        if manifest.get("manifest_version") == 1:
            self._check_version_1(manifest)
            return
        errors = manifest_problems(manifest)
        if errors:
            listed = "; ".join(errors[:_MAX_SCHEMA_ERRORS])
            more = len(errors) - _MAX_SCHEMA_ERRORS
            self.problem(
                f"the manifest {uri} does not match the manifest schema "
                f"({len(errors)} error(s)): {listed}" + (f"; and {more} more" if more > 0 else "")
            )
        self._check_version_copy(manifest, live)
        if errors:
            self.warning("objects not checked: the manifest does not match its schema")
            return
        self._check_identity(manifest)
        self._check_objects(manifest)
        self._check_evidence(manifest)

    def _check_version_1(self, manifest: Mapping[str, Any]) -> None:
        """A manifest of the release before evidence versions: check what it records (the
        originals' digests and sizes, the parts' sizes and row counts)."""
        self.warning(
            f"{self.check.manifest} is a version 1 manifest (landed before evidence "
            "versions): it has no version copy, version ids or part digests; land the day "
            "again to publish a version 2"
        )
        try:
            self._check_identity(manifest)
            self._check_objects(manifest)
        except (KeyError, TypeError) as exc:
            self.problem(f"the version 1 manifest {self.check.manifest} lacks {exc}")

    def _read_small(self, key: str) -> bytes:
        body = self._call("get_object", Bucket=self.bucket, Key=key)["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def _no_manifest(self) -> None:
        check, entry = self.check, self.entry
        records: list[str] = []
        if entry.kind == ExportKind.SNAPSHOT:
            prefix = self.partition.run_records_prefix
            listing = self._call("list_objects_v2", Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
            records = [s3_uri(self.bucket, obj["Key"]) for obj in listing.get("Contents", [])]
        check.status, problem = unpublished_day(entry.kind, records, str(check.manifest))
        if problem:
            self.problem(problem)

    def _check_version_copy(self, manifest: Mapping[str, Any], live: bytes) -> None:
        from botocore.exceptions import ClientError

        version = manifest.get("version")
        if not isinstance(version, str) or not TOKEN.match(version):
            self.problem(f"the manifest names no valid version ({version!r})")
            return
        key = self.partition.version_key(version)
        copy_uri = s3_uri(self.bucket, key)
        try:
            copy = self._read_small(key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                self.problem(f"the copy {copy_uri} of version {version} is missing")
            else:
                self.problem(f"cannot read the copy {copy_uri}: {_describe(exc)}")
            return
        self.check.objects += 1
        if copy == live:
            return
        try:
            same = json.loads(copy) == manifest
        except ValueError:
            same = False
        if not same:
            self.problem(f"the copy {copy_uri} of version {version} differs from the live manifest")

    def _check_identity(self, manifest: Mapping[str, Any]) -> None:
        partition = self.partition
        expected = {
            "vendor": partition.vendor,
            "dataset": partition.dataset,
            "day": partition.day.isoformat(),
        }
        for name, value in expected.items():
            if manifest[name] != value:
                self.problem(
                    f"the manifest names {name} {manifest[name]!r}, but it lies in the "
                    f"partition of {name} {value!r}"
                )
        export = manifest.get("export")
        if export is not None and export != self.entry.name:
            self.warning(f"the manifest was landed by export {export!r}, not {self.entry.name!r}")

    # objects -----------------------------------------------------------------------

    def _check_objects(self, manifest: Mapping[str, Any]) -> None:
        self._verify_object(manifest["raw"], "raw object", "size")
        for item in manifest["evidence"]:
            self._verify_object(item, f"{item['kind']} evidence", "size")
        rejected = manifest["rejected"]
        if rejected.get("key") and rejected.get("sha256"):
            self._verify_object(rejected, "rejected rows", "size")
        elif rejected.get("uri"):
            self.warning(
                f"rejected rows {rejected['uri']} recorded without key and sha256: not checked"
            )
        part_rows = 0
        for part in manifest["parts"]:
            part_rows += part["rows"]
            read = self._verify_object(part, "part", "bytes", keep_tail=True)
            if read is not None:
                self._check_footer(part, read)
        if part_rows != manifest["rows"]:
            self.problem(f"the parts hold {part_rows} rows, the manifest says {manifest['rows']}")

    def _locate(self, item: Mapping[str, Any]) -> tuple[str, str, str]:
        key, uri = str(item["key"]), str(item["uri"])
        bucket = self.bucket
        if uri.startswith("s3://"):
            bucket, _, uri_key = uri.removeprefix("s3://").partition("/")
            if uri_key != key:
                self.problem(f"{uri}: the manifest's uri and key {key!r} disagree")
            if bucket != self.bucket:
                self.warning(f"{uri} lies outside the lake bucket {self.bucket}")
        return bucket, key, uri

    def _verify_object(
        self, item: Mapping[str, Any], label: str, size_field: str, *, keep_tail: bool = False
    ) -> _Read | None:
        """Stream the object (the recorded version) and check its size and sha256; what
        was read when it is intact, else None (the problems say why)."""
        from botocore.exceptions import ClientError

        bucket, key, uri = self._locate(item)
        version_id = item.get("version_id")
        name = f"{uri} (version {version_id})" if version_id else uri
        self.check.objects += 1
        try:
            read = self._stream(bucket, key, version_id, keep_tail)
        except ClientError as exc:
            code = _code(exc)
            if code in _MISSING:
                self.problem(f"{label} {name} is missing ({code})")
            else:
                self.problem(f"{label} {name} cannot be read: {_describe(exc)}")
            return None
        intact = True
        expected_size = item.get(size_field)
        if expected_size is not None and read.size != expected_size:
            intact = False
            self.problem(
                f"{label} {name} is {read.size} bytes, the manifest records {expected_size}"
            )
        if item.get("sha256") is not None and read.sha256 != item["sha256"]:
            intact = False  # (a version 1 manifest records no digest of its parts)
            self.problem(
                f"{label} {name} has sha256 {read.sha256}, the manifest records {item['sha256']}"
            )
        if not intact:
            return None
        if version_id:
            self._check_current_version(bucket, key, uri, str(version_id))
        return read

    def _stream(self, bucket: str, key: str, version_id: Any, keep_tail: bool) -> _Read:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = str(version_id)
        response = self._call("get_object", **kwargs)
        body = response["Body"]
        digest = hashlib.sha256()
        size = 0
        tail = bytearray()
        try:
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if keep_tail:
                    tail += chunk
                    if len(tail) > _TAIL:
                        del tail[: len(tail) - _TAIL]
        finally:
            body.close()
        return _Read(
            sha256=digest.hexdigest(),
            size=size,
            version_id=response.get("VersionId"),
            etag=response.get("ETag"),
            tail=bytes(tail),
        )

    def _check_current_version(self, bucket: str, key: str, uri: str, version_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            current = self._call("head_object", Bucket=bucket, Key=key).get("VersionId")
        except ClientError as exc:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            if _code(exc) in _MISSING:
                marker = (
                    " (its current version is a delete marker)"
                    if headers.get("x-amz-delete-marker") == "true"
                    else ""
                )
                self.warning(
                    f"{uri} was deleted later{marker}; the recorded version {version_id} is intact"
                )
            else:
                self.warning(f"cannot head the current version of {uri}: {_describe(exc)}")
            return
        if current != version_id:
            self.warning(
                f"a later write made a newer version of {uri} ({current}); "
                f"the recorded version {version_id} is intact"
            )

    def _check_footer(self, part: Mapping[str, Any], read: _Read) -> None:
        uri = part["uri"]
        try:
            rows = self._footer_rows(part, read)
        except ValueError as exc:
            self.problem(f"part {uri}: {exc}")
            return
        if rows != part["rows"]:
            self.problem(f"part {uri}: its footer says {rows} rows, the manifest {part['rows']}")

    def _footer_rows(self, part: Mapping[str, Any], read: _Read) -> int:
        """The row count of a part's Parquet footer, from the bytes kept while hashing it,
        or (a footer larger than that) a ranged GET of exactly the object just read."""
        tail = read.tail
        if read.size < 12 or tail[-4:] != _PARQUET_MAGIC:
            raise ValueError("not a Parquet file (no PAR1 at its end)")
        length = int.from_bytes(tail[-8:-4], "little")
        if length + 12 > read.size:
            raise ValueError(f"its footer length {length} exceeds the file ({read.size} bytes)")
        if length + 8 <= len(tail):
            footer = tail[-(length + 8) :]
        else:
            bucket, key, _ = self._locate(part)
            kwargs: dict[str, Any] = {
                "Bucket": bucket,
                "Key": key,
                "Range": f"bytes={read.size - length - 8}-{read.size - 1}",
            }
            if part.get("version_id"):
                kwargs["VersionId"] = str(part["version_id"])
            elif read.etag:
                kwargs["IfMatch"] = read.etag  # the very object that was hashed
            body = self._call("get_object", **kwargs)["Body"]
            try:
                footer = body.read()
            finally:
                body.close()
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_metadata(pa.BufferReader(_PARQUET_MAGIC + footer))
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"its Parquet footer cannot be read: {exc}") from None
        return int(metadata.num_rows)

    # evidence ----------------------------------------------------------------------

    def _check_evidence(self, manifest: Mapping[str, Any]) -> None:
        evidence = manifest["evidence"]
        kinds = {item["kind"] for item in evidence}
        for kind in manifest["evidence_expected"]:
            if kind not in kinds:
                self.problem(
                    "no audit PDFs recorded (the export records PDFs for every partition)"
                    if kind == "pdf"
                    else f"no {kind} evidence recorded (the export records it for every partition)"
                )
        pdfs = [item for item in evidence if item["kind"] == "pdf"]
        if pdfs:
            rejected = manifest["rejected"].get("rows") or 0
            problems, warnings = check_pdf_windows(
                pdfs, manifest["data_interval"], manifest["rows"], rejected
            )
            self.check.problems += problems
            self.check.warnings += warnings


# --- PDF windows -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: dt.datetime
    end: dt.datetime
    filters: Mapping[str, frozenset[str]]
    uri: str

    def label(self) -> str:
        filters = "".join(
            f" {dim}={','.join(sorted(values))}" for dim, values in sorted(self.filters.items())
        )
        return f"{self.uri} [{_fmt(self.start)}..{_fmt(self.end)}{filters}]"

    def meets(self, other: _Window) -> bool:
        """Their times intersect, and so do the values of every dimension both filter."""
        if self.start > other.end or other.start > self.end:
            return False
        shared = self.filters.keys() & other.filters.keys()
        return all(self.filters[dim] & other.filters[dim] for dim in shared)


def _instant(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a timestamp")
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _fmt(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _listed(found: list[str], limit: int = _MAX_LISTED) -> list[str]:
    return found[:limit] + ([f"... and {len(found) - limit} more"] if len(found) > limit else [])


def check_pdf_windows(
    pdfs: Sequence[Mapping[str, Any]],
    data_interval: Mapping[str, Any],
    rows: int,
    rejected_rows: int = 0,
) -> tuple[list[str], list[str]]:
    """Problems and warnings of a partition's audit PDFs (evidence items of kind pdf).

    Windows are ``[start, end]``, both inclusive, at millisecond precision. No two may
    overlap (times intersect and every dimension both filter shares a value); their time
    ranges together must cover ``[data_interval.start, data_interval.end - 1 ms]``; their
    ``expected_events`` must sum to the day's ``rows`` (skipped, with a warning, when a
    PDF has no count).
    """
    problems: list[str] = []
    warnings: list[str] = []
    windows: list[_Window] = []
    counts: list[int | None] = []
    for item in pdfs:
        uri = str(item.get("uri"))
        window = item.get("window")
        if not isinstance(window, Mapping):
            problems.append(f"PDF {uri} records no window")
            continue
        try:
            start, end = _instant(window.get("start")), _instant(window.get("end"))
        except ValueError as exc:
            problems.append(f"PDF {uri}: its window has a bad timestamp: {exc}")
            continue
        filters = window.get("filters") or {}
        parsed = _Window(
            start, end, {str(d): frozenset(map(str, v)) for d, v in filters.items()}, uri
        )
        if end < start:
            problems.append(f"PDF window {parsed.label()} ends before it starts")
            continue
        windows.append(parsed)
        counts.append(
            item["expected_events"] if "expected_events" in item else window.get("expected_events")
        )
    windows.sort(key=lambda w: (w.start, w.end))

    overlaps = []
    for i, first in enumerate(windows):
        for second in windows[i + 1 :]:
            if second.start > first.end:
                break
            if first.meets(second):
                overlaps.append(f"PDF windows overlap: {first.label()} and {second.label()}")
    problems += _listed(overlaps)

    try:
        start, end = _instant(data_interval["start"]), _instant(data_interval["end"]) - _MS
    except (KeyError, ValueError) as exc:
        problems.append(f"PDF coverage not checked: bad data_interval ({exc})")
    else:
        holes = [
            f"PDF windows leave {_fmt(a)}..{_fmt(b)} uncovered"
            for a, b in _uncovered(((w.start, w.end) for w in windows), start, end)
        ]
        problems += _listed(holes)
        outside = [w.label() for w in windows if w.start < start or w.end > end]
        if outside:
            warnings.append(
                f"PDF window(s) reach outside the data interval {_fmt(start)}..{_fmt(end)}: "
                + "; ".join(_listed(outside))
            )

    if any(count is None for count in counts):
        missing = sum(count is None for count in counts)
        warnings.append(f"PDF event counts not checked: {missing} PDF(s) record no expected_events")
    elif windows:
        total = sum(int(count or 0) for count in counts)
        if total != rows + rejected_rows:
            note = f" ({rows} landed, {rejected_rows} rejected)" if rejected_rows else ""
            problems.append(f"PDFs hold {total} events, the day has {rows + rejected_rows}{note}")
    return problems, warnings


def _uncovered(
    ranges: Iterable[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The spans of ``[start, end]`` (inclusive, ms precision) no range covers."""
    holes = []
    cursor = start
    for low, high in sorted(ranges):
        if low > cursor and cursor <= end:
            holes.append((cursor, min(low - _MS, end)))
        cursor = max(cursor, high + _MS)
    if cursor <= end:
        holes.append((cursor, end))
    return holes


# --- helpers ---------------------------------------------------------------------------


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Any) -> str:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    return f"{code} {message}".strip()
