"""Fetch: stream a vendor's export file into the lake's raw zone, never whole in memory.

The HTTP body is wrapped in a file-like :class:`HashingReader` (sha256, size, progress
logging, Content-Length check) and handed to boto3's managed multipart
``upload_fileobj``. A dropped connection or a short body raises inside the upload, so
boto3 aborts the multipart upload and no object appears; the operator then retries the
whole download from the start (bounded). Keys come from ``landing.layout.Partition``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import mimetypes
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NotRequired, TypedDict

import httpx
from airflow.sdk import BaseOperator

from compliance_exports.core.errors import ExportValidationError, FatalError, RetryableError
from compliance_exports.core.hooks import Download, ExportHook, safe_filename
from compliance_exports.core.lineage import fetch_lineage, openlineage_available
from compliance_exports.core.states import ExportState
from compliance_exports.landing.lake import LOCK_MODES, ObjectLock, version_of
from compliance_exports.landing.layout import Partition, new_token, s3_uri
from compliance_exports.landing.manifest import redact
from compliance_exports.landing.progress import MB, ProgressLog

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

UPLOAD_CONCURRENCY = 4
SSE_MODES = ("AES256", "aws:kms")
_EXTENSIONS = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}


#: How much of a download is read before its key is chosen (a zip's first member name).
SNIFF_BYTES = 512
_ZIP_MAGIC = b"PK\x03\x04"
_WORKBOOK_PARTS = ("[Content_Types].xml", "xl/", "docProps/", "_rels/")


def sniff_suffix(head: bytes) -> str | None:
    """The extension a file's first bytes prove: ``.pdf``, ``.xlsx`` or ``.zip``; None for
    text (CSV) or anything unrecognised. An XLSX is a zip whose first member is one of
    the workbook's parts (``[Content_Types].xml``, ``xl/...``)."""
    if head.startswith(b"%PDF-"):
        return ".pdf"
    if not head.startswith(_ZIP_MAGIC) or len(head) < 30:
        return None
    name_length = int.from_bytes(head[26:28], "little")
    first_member = head[30 : 30 + name_length].decode("utf-8", "replace")
    return ".xlsx" if first_member.startswith(_WORKBOOK_PARTS) else ".zip"


class RawObject(TypedDict):
    """What a fetch returns through XCom: where the original file landed, and its digest."""

    bucket: str
    key: str  # run-scoped: raw/.../dt=<day>/run=<token>/<file>, never overwritten
    uri: str
    sha256: str
    size: int
    version_id: str | None  # on a versioned bucket: exactly the version we wrote
    downloaded_at: str
    content_type: str
    filename: str
    job_id: str | None
    vendor: str
    dataset: str
    day: str
    jobs: list[dict[str, Any]]  # every remote job behind the file (the durable export task)
    request: dict[str, Any]  # what was asked of the vendor (secret-looking keys removed)
    #: how many times the export task may submit again after a failed job (job vendors)
    resubmit_budget: NotRequired[int]
    #: the row count the vendor reported for its file, where it gives one
    vendor_rows: NotRequired[int | None]
    #: when the vendor produced the file, where it says (ISO); a snapshot's extraction time
    produced_at: NotRequired[str | None]


class TruncatedDownloadError(RetryableError):
    """The body ended before Content-Length, or the connection dropped mid-body."""


class ExpiredLinkError(RetryableError):
    """The download link expired before we used it: ask the vendor for a fresh one."""


class HashingReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks that hashes what passes through.

    At the end of the stream the byte count must equal ``expected_size`` (when known);
    otherwise, and on any transport error mid-body, :class:`TruncatedDownloadError`.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        expected_size: int | None,
        progress: ProgressLog | None = None,
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = bytearray()
        self._eof = False
        self.expected_size = expected_size
        self.size = 0
        self.progress = progress
        self._sha256 = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def readable(self) -> bool:
        return True

    def peek(self, size: int) -> bytes:
        """The stream's first bytes (up to ``size``) without consuming them; a transport
        error here is a :class:`TruncatedDownloadError` like any other."""
        while not self._eof and len(self._buffer) < size:
            self._pull()
        return bytes(self._buffer[:size])

    def readinto(self, target: Any) -> int:
        view = memoryview(target)
        while not self._eof and len(self._buffer) < len(view):
            self._pull()
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        del self._buffer[:count]
        return count

    def _pull(self) -> None:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            self._check_complete()
            return
        except httpx.TransportError as exc:
            raise TruncatedDownloadError(
                f"the download broke after {self.size} bytes: {type(exc).__name__}"
            ) from None
        self._buffer += chunk
        self._sha256.update(chunk)
        self.size += len(chunk)
        if self.progress is not None:
            self.progress.advance(len(chunk))

    def _check_complete(self) -> None:
        if self.expected_size is not None and self.size != self.expected_size:
            raise TruncatedDownloadError(
                f"the download ended after {self.size} of {self.expected_size} bytes"
            )


def as_day(value: Any) -> dt.date:
    """A partition day from a date, a datetime or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ExportValidationError("day", f"{value!r} is not a YYYY-MM-DD date") from None


class ExportFetchOperator(BaseOperator):
    """Stream one export file into ``raw/vendor=/dataset=/dt=/run=<token>/`` (a new key for
    every download: nothing is overwritten) and return a RawObject.

    Subclasses set ``hook_class`` and implement :meth:`open_download`.
    """

    hook_class: ClassVar[type[ExportHook]]
    template_fields: tuple[str, ...] = (
        "dataset",
        "bucket",
        "prefix",
        "day",
        "filename",
        "conn_id",
        "aws_conn_id",
        "kms_key_id",
        "object_lock_mode",
    )

    def __init__(
        self,
        *,
        dataset: str,
        bucket: str,
        aws_conn_id: str = "aws_default",
        prefix: str = "",
        day: str | dt.date | None = None,
        filename: str | None = None,
        conn_id: str | None = None,
        server_side_encryption: str | None = "AES256",
        kms_key_id: str | None = None,
        object_lock_mode: str | None = None,
        object_lock_days: int | None = None,
        max_download_attempts: int = 3,
        progress_interval: float = 10.0,
        multipart_chunksize: int = 8 * MB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.bucket = bucket
        self.aws_conn_id = aws_conn_id
        self.prefix = prefix
        self.day = day
        self.filename = filename
        self.conn_id = conn_id or self.hook_class.default_conn_name
        self.server_side_encryption = server_side_encryption
        self.kms_key_id = kms_key_id
        self.object_lock_mode = object_lock_mode
        self.object_lock_days = object_lock_days
        self.max_download_attempts = max_download_attempts
        self.progress_interval = progress_interval
        self.multipart_chunksize = multipart_chunksize
        #: ``(vendor endpoint, RawObject)`` of each file this instance landed (lineage)
        self._fetched: list[tuple[str, RawObject]] = []

    @cached_property
    def hook(self) -> ExportHook:
        return self.hook_class(self.conn_id)

    # -- what subclasses provide --------------------------------------------------------

    def validate(self) -> None:
        """Check every argument before any request (subclasses extend)."""
        if self.server_side_encryption not in (None, *SSE_MODES):
            raise ExportValidationError(
                "server_side_encryption", f"must be one of {SSE_MODES} or None"
            )
        if self.kms_key_id and self.server_side_encryption != "aws:kms":
            raise ExportValidationError("kms_key_id", "only with server_side_encryption='aws:kms'")
        if self.max_download_attempts < 1:
            raise ExportValidationError("max_download_attempts", "must be at least 1")
        if self.object_lock_mode not in (None, *LOCK_MODES):
            raise ExportValidationError("object_lock_mode", f"must be one of {LOCK_MODES} or None")
        try:
            ObjectLock.of(self.object_lock_mode, self.object_lock_days)
        except ValueError as exc:
            raise ExportValidationError("object_lock_days", str(exc)) from None

    def open_download(self) -> AbstractContextManager[Download]:
        raise NotImplementedError

    @property
    def job_id(self) -> str | None:
        return None

    def vendor_request(self) -> dict[str, Any]:
        """What was asked of the vendor for this file (recorded in the manifest)."""
        return {}

    # -- the fetch ---------------------------------------------------------------------

    def execute(self, context: Context) -> RawObject:
        self.validate()
        return self.fetch(self.partition(context))

    def partition(self, context: Context) -> Partition:
        return Partition(self.hook.vendor, self.dataset, self.resolve_day(context), self.prefix)

    def fetch(self, partition: Partition) -> RawObject:
        """Download into the raw zone of ``partition``; a break restarts from the first byte."""
        for attempt in range(1, self.max_download_attempts + 1):
            try:
                return self.fetch_once(partition)
            except RetryableError as exc:
                if attempt == self.max_download_attempts:
                    raise
                self.log.warning(
                    "download attempt %d/%d failed (%s); starting again from the first byte",
                    attempt,
                    self.max_download_attempts,
                    exc,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def resolve_day(self, context: Context) -> dt.date:
        value = self.day or context.get("data_interval_start") or context.get("logical_date")
        if value is None:
            raise ExportValidationError("day", "no data interval or logical date: pass day=")
        return as_day(value)

    def fetch_once(self, partition: Partition) -> RawObject:
        with self.open_download() as download:
            progress = ProgressLog(self.log.info, download.content_length, self.progress_interval)
            reader = HashingReader(
                download.response.iter_bytes(64 * 1024),
                expected_size=download.content_length,
                progress=progress,
            )
            head = reader.peek(SNIFF_BYTES)
            key = partition.raw_key(self.object_name(download, sniff_suffix(head)), new_token())
            version_id = self.upload(reader, key, download)
            progress.report(f"stored s3://{self.bucket}/{key}")
        raw = RawObject(
            bucket=self.bucket,
            key=key,
            uri=s3_uri(self.bucket, key),
            sha256=reader.sha256,
            size=reader.size,
            version_id=version_id,
            downloaded_at=dt.datetime.now(dt.UTC).isoformat(),
            content_type=download.content_type,
            filename=key.rsplit("/", 1)[-1],
            job_id=self.job_id,
            vendor=self.hook.vendor,
            dataset=self.dataset,
            day=partition.day.isoformat(),
            jobs=[],
            request=redact(self.vendor_request()),
        )
        # the same dict the task returns: what a caller adds to it (an export task's
        # vendor_rows, after the deferral) is in the lineage too
        self._fetched.append((download.source_uri, raw))
        return raw

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The OpenLineage provider's hook: the vendor export in, the raw objects out
        (core/lineage.py), from the files this instance landed; after a deferral that is
        the resumed instance, which landed them."""
        if not self._fetched or not openlineage_available():
            return None
        return fetch_lineage(self._fetched)

    def object_name(self, download: Download, sniffed: str | None = None) -> str:
        """Deterministic per partition: ``<dataset><ext>`` by default.

        The extension comes from the file's own bytes where they say (``sniffed``: a zip,
        an XLSX workbook, a PDF), else from the vendor's file name, else its Content-Type:
        a vendor that serves a zip as ``application/csv`` still lands a ``.zip``.
        """
        if self.filename:
            return safe_filename(self.filename)
        suffix = "." + download.filename.rsplit(".", 1)[-1] if "." in download.filename else ""
        if suffix.lower() not in set(_EXTENSIONS.values()):
            mime = download.content_type.split(";")[0].strip().lower()
            suffix = _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime) or ".bin"
        if sniffed and sniffed != suffix.lower():
            self.log.warning(
                "%s (%s) is a %s file by its bytes: stored as such",
                download.filename,
                download.content_type,
                sniffed,
            )
            suffix = sniffed
        return safe_filename(f"{self.dataset}{suffix.lower()}")

    def upload(self, reader: HashingReader, key: str, download: Download) -> str | None:
        """Stream into a new object (never an existing key); return its version id."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from boto3.s3.transfer import TransferConfig

        client = S3Hook(aws_conn_id=self.aws_conn_id).get_conn()
        config = TransferConfig(
            multipart_threshold=self.multipart_chunksize,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        # memory bound: at most this many parts are buffered at once, whatever the size
        config.max_in_memory_upload_chunks = UPLOAD_CONCURRENCY + 1
        client.upload_fileobj(
            reader, self.bucket, key, ExtraArgs=self.extra_args(download), Config=config
        )
        return version_of(client.head_object(Bucket=self.bucket, Key=key))

    def extra_args(self, download: Download) -> dict[str, Any]:
        args: dict[str, Any] = {
            "ContentType": download.content_type,
            "Metadata": {"vendor": self.hook.vendor, "source-filename": download.filename},
        }
        if self.job_id:
            args["Metadata"]["job-id"] = self.job_id
        if self.server_side_encryption:
            args["ServerSideEncryption"] = self.server_side_encryption
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        lock = ObjectLock.of(self.object_lock_mode, self.object_lock_days)
        if lock:
            args.update(lock.extra_args())
        return args


class JobEndedError(FatalError):
    """The job has no file to download: it ended FAILED, CANCELLED or EXPIRED."""

    def __init__(self, state: ExportState) -> None:
        reason = f": {state.message}" if state.message else ""
        super().__init__(f"export {state.job_id} is {state.raw_status}, not downloadable{reason}")
        self.state = state
