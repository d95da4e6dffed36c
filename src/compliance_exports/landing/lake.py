"""The S3 side of landing: objects written once, versions published, old versions retired.

Every object a run writes has a run-scoped key (``landing.layout``): nothing is ever
overwritten. A partition version is published in this order (the reader contract in
docs/LANDING.md and the evidence story in docs/MANIFEST.md rest on it):

1. parts are uploaded under ``_staging/.../<run token>/`` (invisible to readers);
2. each part is copied to its run-scoped curated key ``part-<run token>-NNNNN.parquet``;
3. the version's manifest is PUT at ``_versions/<version>.json`` (immutable, Object
   Lock where configured), then the same document at ``_manifest.json``: **the switch**;
4. the staging objects are deleted, and :class:`Housekeeping` retires versions beyond
   ``keep_versions`` (never what a kept version names, never a locked object).

A failure before the switch removes what this run copied and leaves the live version
untouched; after it the new version is live.

On a versioned bucket (which S3 Object Lock requires) each object's version id is
recorded, so ``verify`` reads exactly the bytes the manifest describes, and a later
PUT to the same key cannot change them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance_exports.landing.layout import TOKEN, Partition, new_token, s3_uri
from compliance_exports.landing.manifest import Manifest, PartEntry, named_objects
from compliance_exports.landing.progress import ProgressLog

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)
PART_SUFFIX = ".parquet"
SSE_CHOICES = ("AES256", "aws:kms")
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
#: a curated part no version names is removed once it is this old (never a concurrent
#: run's part that is about to be published)
STRAY_GRACE = dt.timedelta(days=1)


@dataclass(frozen=True)
class ServerSideEncryption:
    """``AES256`` (S3-managed keys) or ``aws:kms`` with a key id; ``None`` = bucket default."""

    algorithm: str | None = None
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in (None, *SSE_CHOICES):
            raise ValueError(f"sse {self.algorithm!r} is not one of {', '.join(SSE_CHOICES)}")
        if self.algorithm == "aws:kms" and not self.kms_key_id:
            raise ValueError("sse aws:kms needs a kms_key_id")
        if self.kms_key_id and self.algorithm != "aws:kms":
            raise ValueError("kms_key_id is only used with sse aws:kms")

    def extra_args(self) -> dict[str, str]:
        """The boto3 ``ExtraArgs`` / ``put_object`` keywords for every object we write."""
        if self.algorithm is None:
            return {}
        args = {"ServerSideEncryption": self.algorithm}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


@dataclass(frozen=True)
class ObjectLock:
    """S3 Object Lock retention for evidence (raw objects and manifests): ``mode``
    GOVERNANCE or COMPLIANCE, kept ``days`` days from the write. Needs a bucket created
    with Object Lock enabled (hence versioned)."""

    mode: str
    days: int

    def __post_init__(self) -> None:
        if self.mode not in LOCK_MODES:
            raise ValueError(
                f"object lock mode {self.mode!r} is not one of {', '.join(LOCK_MODES)}"
            )
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise ValueError(f"object lock days {self.days!r} is not a whole number >= 1")

    @classmethod
    def of(cls, mode: str | None, days: int | None) -> ObjectLock | None:
        """``None`` when neither is set; both or neither."""
        if mode is None and days is None:
            return None
        if mode is None or days is None:
            raise ValueError("object lock needs both a mode and days")
        return cls(mode, days)

    def retain_until(self, now: dt.datetime | None = None) -> dt.datetime:
        start = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        return start + dt.timedelta(days=self.days)

    def extra_args(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return {"ObjectLockMode": self.mode, "ObjectLockRetainUntilDate": self.retain_until(now)}

    def describe(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "days": self.days,
            "retain_until": self.retain_until(now).isoformat(),
        }


def version_of(answer: Mapping[str, Any]) -> str | None:
    """The S3 version id in a PUT/HEAD answer; ``None`` on an unversioned bucket."""
    value = answer.get("VersionId")
    return str(value) if value and value != "null" else None


def run_part_key(partition: Partition, run_token: str, index: int) -> str:
    """A part of one published version: the run token keeps versions from colliding."""
    partition.staging_prefix(run_token)  # validates the token as a key segment
    return f"{partition.curated_prefix}part-{run_token}-{index:05d}{PART_SUFFIX}"


def staged_part_key(partition: Partition, run_token: str, index: int) -> str:
    return f"{partition.staging_prefix(run_token)}part-{index:05d}{PART_SUFFIX}"


class LakeStore:
    """One bucket of the lake, reached through the amazon provider's S3Hook.

    ``lock`` (Object Lock retention) is applied where :meth:`upload` / :meth:`put_json`
    are asked to (``evidence=True``): raw originals and manifests, not derived Parquet.
    """

    def __init__(
        self,
        aws_conn_id: str,
        bucket: str,
        sse: ServerSideEncryption | None = None,
        lock: ObjectLock | None = None,
        progress_interval: float = 10.0,
    ) -> None:
        self.aws_conn_id = aws_conn_id
        self.bucket = bucket
        self.sse = sse or ServerSideEncryption()
        self.lock = lock
        self.progress_interval = progress_interval

    @cached_property
    def hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, extra_args=self.sse.extra_args())

    @cached_property
    def client(self) -> Any:
        return self.hook.get_conn()

    def write_args(self, *, evidence: bool) -> dict[str, Any]:
        lock = self.lock.extra_args() if evidence and self.lock else {}
        return {**self.sse.extra_args(), **lock}

    def download(
        self, key: str, path: Path, bucket: str | None = None, version_id: str | None = None
    ) -> None:
        """Managed (multipart, parallel) download of one object (the recorded version)."""
        extra = {"VersionId": version_id} if version_id else None
        size = self.client.head_object(Bucket=bucket or self.bucket, Key=key, **(extra or {})).get(
            "ContentLength"
        )
        progress = ProgressLog(log.info, size, self.progress_interval)
        self.client.download_file(
            bucket or self.bucket, key, str(path), ExtraArgs=extra, Callback=progress.advance
        )
        progress.report(f"downloaded s3://{bucket or self.bucket}/{key}")

    def upload(self, path: Path, key: str, *, evidence: bool = False) -> str | None:
        """Managed multipart upload, encrypted (and locked, for evidence) as configured;
        returns the object's version id on a versioned bucket."""
        progress = ProgressLog(log.info, path.stat().st_size, self.progress_interval)
        self.client.upload_file(
            str(path),
            self.bucket,
            key,
            ExtraArgs=self.write_args(evidence=evidence) or None,
            Callback=progress.advance,
        )
        progress.report(f"uploaded s3://{self.bucket}/{key}")
        return self.version_id(key)

    def copy(self, source_key: str, key: str) -> str | None:
        """Server-side managed copy (multipart beyond 5 GB), re-encrypted as configured."""
        self.client.copy(
            {"Bucket": self.bucket, "Key": source_key},
            self.bucket,
            key,
            ExtraArgs=self.sse.extra_args() or None,
        )
        return self.version_id(key)

    def version_id(self, key: str) -> str | None:
        """The current version id of ``key`` (managed transfers do not return it)."""
        return version_of(self.client.head_object(Bucket=self.bucket, Key=key))

    def put_json(self, key: str, body: object, *, evidence: bool = False) -> str | None:
        answer = self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, indent=2, sort_keys=False).encode(),
            ContentType="application/json",
            **self.write_args(evidence=evidence),
        )
        return version_of(answer)

    def read_json(self, key: str) -> Any | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    def keys(self, prefix: str) -> list[str]:
        return list(self.hook.list_keys(bucket_name=self.bucket, prefix=prefix))

    def delete(self, keys: Sequence[str]) -> None:
        if keys:
            self.hook.delete_objects(self.bucket, list(keys))

    def retained_until(self, key: str, version_id: str | None) -> dt.datetime | None:
        """When Object Lock lets ``key`` (that version) be deleted; ``None`` = now.

        A legal hold counts as retained indefinitely (``datetime.max``).
        """
        extra = {"VersionId": version_id} if version_id else {}
        head = self.client.head_object(Bucket=self.bucket, Key=key, **extra)
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return dt.datetime.max.replace(tzinfo=dt.UTC)
        until = head.get("ObjectLockRetainUntilDate")
        if isinstance(until, dt.datetime) and until > dt.datetime.now(dt.UTC):
            return until
        return None

    def delete_version(self, key: str, version_id: str | None) -> None:
        """Delete one object for good: that version on a versioned bucket (never with
        ``BypassGovernanceRetention``: a locked version stays locked)."""
        extra = {"VersionId": version_id} if version_id else {}
        self.client.delete_object(Bucket=self.bucket, Key=key, **extra)


@dataclass(frozen=True)
class StagedPart:
    path: Path
    rows: int
    bytes: int
    sha256: str


class PartitionPublisher:
    """Stages, publishes and retires the versions of one partition (module docstring)."""

    def __init__(
        self,
        store: LakeStore,
        partition: Partition,
        run_token: str,
        keep_versions: int | None = None,
    ) -> None:
        self.store = store
        self.partition = partition
        self.run_token = run_token
        self.keep_versions = keep_versions
        self.version: str | None = None

    def stage(self, parts: Sequence[StagedPart]) -> list[str]:
        keys = []
        for index, part in enumerate(parts):
            key = staged_part_key(self.partition, self.run_token, index)
            self.store.upload(part.path, key)
            keys.append(key)
        return keys

    def live(self) -> dict[str, Any] | None:
        manifest = self.store.read_json(self.partition.manifest_key)
        return manifest if isinstance(manifest, dict) else None

    def publish(
        self, staged: Sequence[str], parts: Sequence[StagedPart], manifest: Callable[..., Manifest]
    ) -> Manifest:
        """Copy staged parts to their curated keys, then switch to the new version.

        ``manifest(parts=[...])`` builds the manifest once the final part keys are known.
        """
        entries: list[PartEntry] = []
        try:
            for index, (source, part) in enumerate(zip(staged, parts, strict=True)):
                key = run_part_key(self.partition, self.run_token, index)
                version_id = self.store.copy(source, key)
                entries.append(self._entry(key, part, version_id))
            body = self.switch(lambda: manifest(parts=entries))
        except BaseException:
            self._undo([entry["key"] for entry in entries])
            raise
        self.drop_staging()
        self.retire()
        return body

    def switch(self, build: Callable[[], Manifest]) -> Manifest:
        """Publish ``build()`` as the partition's new live version (its immutable copy
        first, then the live key); the version token and predecessor are filled in here."""
        live = self.live()
        previous = live.get("version") if live else None
        if live and previous is None and TOKEN.match(str(live.get("run_token"))):
            # a manifest of the release before versions (manifest_version 1): keep it as
            # a version of its own, so retention counts it and its parts stay named
            previous = str(live["run_token"])
            self.store.put_json(self.partition.version_key(previous), live, evidence=True)
        body = build()
        self.version = new_token()
        body["version"] = self.version
        body["supersedes"] = previous
        body["object_lock"] = self.store.lock.describe() if self.store.lock else None
        body["published_at"] = dt.datetime.now(dt.UTC).isoformat()
        from compliance_exports.landing.manifest import check_manifest

        check_manifest(body)
        self.store.put_json(self.partition.version_key(body["version"]), body, evidence=True)
        self.store.put_json(self.partition.manifest_key, body, evidence=True)
        log.info(
            "published %s version %s (%d rows; supersedes %s)",
            self.partition.curated_prefix,
            body["version"],
            body["rows"],
            body["supersedes"] or "nothing",
        )
        return body

    def _entry(self, key: str, part: StagedPart, version_id: str | None) -> PartEntry:
        return {
            "key": key,
            "uri": s3_uri(self.store.bucket, key),
            "rows": part.rows,
            "bytes": part.bytes,
            "sha256": part.sha256,
            "version_id": version_id,
        }

    def _undo(self, copied: Sequence[str]) -> None:
        """Best effort after a failure: unless our version went live, remove our copies
        (and our manifest copy, unless Object Lock keeps it: then it stays as the record
        of a version that was never published)."""
        try:
            live = self.live()
            if live and live.get("run_token") == self.run_token:
                return  # the PUT reached S3 although the call failed: keep the new version
            self.store.delete(copied)
            self.drop_staging()
            if self.version:
                self._drop_unpublished(self.partition.version_key(self.version))
        except Exception:
            log.exception("cleanup after a failed publish of %s failed", self.partition)

    def _drop_unpublished(self, key: str) -> None:
        try:
            version_id = self.store.version_id(key)
        except Exception as exc:
            if _status(exc) == 404:
                return  # never written
            raise
        if self.store.retained_until(key, version_id) is None:
            self.store.delete_version(key, version_id)
        else:
            log.warning(
                "s3://%s/%s is locked: kept as an unpublished version", self.store.bucket, key
            )

    def drop_staging(self) -> None:
        self.store.delete(self.store.keys(self.partition.staging_prefix(self.run_token)))

    def retire(self) -> None:
        """Housekeeping after a publication; its failure never fails the landing."""
        try:
            Housekeeping(self.store, self.partition, self.keep_versions).run()
        except Exception:
            log.exception("housekeeping of %s failed (the new version is live)", self.partition)


class Housekeeping:
    """Retire superseded versions of one partition beyond ``keep_versions``.

    Keeps the live version and the newest others up to ``keep_versions`` in all
    (``None`` = keep every version). For each retired version it deletes the objects only
    it names (never one a kept version names, so never one the live manifest names),
    then its manifest copy. An object still under Object Lock retention (or a legal
    hold) is skipped and logged, never deleted with a governance bypass; the version's
    manifest copy then stays too, so what remains is still described. Curated parts
    that no version names (a run killed between copy and switch) are removed too.
    """

    def __init__(self, store: LakeStore, partition: Partition, keep_versions: int | None) -> None:
        self.store = store
        self.partition = partition
        self.keep_versions = keep_versions

    def versions(self) -> list[str]:
        """Published version tokens, oldest first."""
        prefix = self.partition.versions_prefix
        tokens = [key[len(prefix) :].removesuffix(".json") for key in self.store.keys(prefix)]
        return sorted(token for token in tokens if TOKEN.match(token))

    def run(self) -> dict[str, list[str]]:
        live = self.store.read_json(self.partition.manifest_key)
        if not isinstance(live, dict):
            return {"retired": [], "skipped": []}
        versions, bucket = self.versions(), self.store.bucket
        documents = {token: self._document(token) for token in versions}
        keep = self._kept(versions, str(live.get("version")))
        protected = {
            key for token in keep for key, _ in named_objects(documents[token] or {}, bucket)
        }
        protected |= {key for key, _ in named_objects(live, bucket)}
        retired, skipped = [], []
        for token in versions:
            if token in keep:
                continue
            if self._retire(token, documents[token] or {}, protected):
                retired.append(token)
            else:
                skipped.append(token)
        named = {key for doc in documents.values() for key, _ in named_objects(doc or {}, bucket)}
        self._drop_unnamed_parts(named | protected)
        if retired or skipped:
            log.info(
                "%s: retired version(s) %s; kept %s (locked: %s)",
                self.partition.curated_prefix,
                ", ".join(retired) or "none",
                ", ".join(sorted(keep)),
                ", ".join(skipped) or "none",
            )
        return {"retired": retired, "skipped": skipped}

    def _document(self, token: str) -> dict[str, Any] | None:
        body = self.store.read_json(self.partition.version_key(token))
        return body if isinstance(body, dict) else None

    def _kept(self, versions: Sequence[str], live: str) -> set[str]:
        """The live version and the newest others, ``keep_versions`` in all."""
        if self.keep_versions is None:
            return set(versions)
        others = [token for token in versions if token != live]
        newest = others[::-1][: max(self.keep_versions - 1, 0)]
        return {live, *newest}

    def _retire(self, token: str, document: Mapping[str, Any], protected: set[str]) -> bool:
        """Delete what only ``token`` names, then its manifest copy; nothing at all (and
        False) while any of it is under Object Lock retention or a legal hold."""
        manifest_copy = self.partition.version_key(token)
        doomed = [
            (key, version_id)
            for key, version_id in named_objects(document, self.store.bucket)
            if key not in protected
        ]
        doomed.append((manifest_copy, self.store.version_id(manifest_copy)))
        for key, version_id in doomed:
            until = self._retained_until(key, version_id)
            if until is not None:
                log.warning(
                    "version %s of %s is kept: s3://%s/%s (version %s) is under Object Lock "
                    "until %s",
                    token,
                    self.partition.curated_prefix,
                    self.store.bucket,
                    key,
                    version_id or "-",
                    until.isoformat(),
                )
                return False
        for key, version_id in doomed:
            self.store.delete_version(key, version_id)
        return True

    def _retained_until(self, key: str, version_id: str | None) -> dt.datetime | None:
        try:
            return self.store.retained_until(key, version_id)
        except Exception as exc:  # already gone: nothing holds it
            if _status(exc) == 404:
                return None
            raise

    def _drop_unnamed_parts(self, named: Iterable[str]) -> None:
        """Remove curated parts no version names that are older than :data:`STRAY_GRACE`
        (a run killed between copy and switch); a younger one may be a concurrent run's,
        not yet published."""
        prefix = self.partition.curated_prefix
        known = set(named)
        stray = [
            key
            for key in self.store.keys(prefix)
            if key.endswith(PART_SUFFIX)
            and key not in known
            and "/" not in key[len(prefix) :]
            and _older_than(key[len(prefix) :], STRAY_GRACE)
        ]
        if stray:
            log.info("removing %d curated part(s) no version names: %s", len(stray), stray)
            self.store.delete(stray)


def _older_than(name: str, age: dt.timedelta) -> bool:
    """Whether the part file ``name`` (``part-<token>-NNNNN.parquet``) was written more
    than ``age`` ago, by its token; a name without a token counts as old."""
    try:
        stamp = dt.datetime.strptime(name[len("part-") :][:16], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return True
    return stamp.replace(tzinfo=dt.UTC) < dt.datetime.now(dt.UTC) - age


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(code) if code else None
    return None
