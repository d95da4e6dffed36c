"""The S3 side of landing: download a raw object, stage parts, publish a partition.

Publication order (the reader contract in docs/LANDING.md rests on it):

1. parts are uploaded under ``_staging/.../<run token>/`` (invisible to readers);
2. each part is copied to its run-scoped curated key ``part-<run token>-NNNNN.parquet``
   (new names: the live version's parts are never overwritten);
3. ``_manifest.json`` is PUT (one atomic write): it lists exactly the new part keys;
4. every other ``*.parquet`` under the partition (the previous version, leftovers of
   crashed runs) and the staging objects are deleted.

A failure before step 3 removes what this run copied and leaves the previous
version untouched; after step 3 the new version is live and a retry cleans up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance_exports.landing.layout import Partition, s3_uri
from compliance_exports.landing.manifest import Manifest, PartEntry

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)
PART_SUFFIX = ".parquet"
SSE_CHOICES = ("AES256", "aws:kms")


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


def run_part_key(partition: Partition, run_token: str, index: int) -> str:
    """A part of one published version: the run token keeps versions from colliding."""
    partition.staging_prefix(run_token)  # validates the token as a key segment
    return f"{partition.curated_prefix}part-{run_token}-{index:05d}{PART_SUFFIX}"


def staged_part_key(partition: Partition, run_token: str, index: int) -> str:
    return f"{partition.staging_prefix(run_token)}part-{index:05d}{PART_SUFFIX}"


class LakeStore:
    """One bucket of the lake, reached through the amazon provider's S3Hook."""

    def __init__(
        self, aws_conn_id: str, bucket: str, sse: ServerSideEncryption | None = None
    ) -> None:
        self.aws_conn_id = aws_conn_id
        self.bucket = bucket
        self.sse = sse or ServerSideEncryption()

    @cached_property
    def hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, extra_args=self.sse.extra_args())

    @cached_property
    def client(self) -> Any:
        return self.hook.get_conn()

    def download(self, key: str, path: Path, bucket: str | None = None) -> None:
        """Managed (multipart, parallel) download of one object to a local file."""
        self.client.download_file(bucket or self.bucket, key, str(path))

    def upload(self, path: Path, key: str) -> None:
        """Managed multipart upload with the configured encryption."""
        self.hook.load_file(path, key, bucket_name=self.bucket, replace=True)

    def copy(self, source_key: str, key: str) -> None:
        """Server-side managed copy (multipart beyond 5 GB), re-encrypted as configured."""
        self.client.copy(
            {"Bucket": self.bucket, "Key": source_key},
            self.bucket,
            key,
            ExtraArgs=self.sse.extra_args() or None,
        )

    def put_json(self, key: str, body: object) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(body, indent=2, sort_keys=False).encode(),
            ContentType="application/json",
            **self.sse.extra_args(),
        )

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


@dataclass(frozen=True)
class StagedPart:
    path: Path
    rows: int
    bytes: int


class PartitionPublisher:
    """Stages, publishes and cleans one partition version (see the module docstring)."""

    def __init__(self, store: LakeStore, partition: Partition, run_token: str) -> None:
        self.store = store
        self.partition = partition
        self.run_token = run_token

    def stage(self, parts: Sequence[StagedPart]) -> list[str]:
        keys = []
        for index, part in enumerate(parts):
            key = staged_part_key(self.partition, self.run_token, index)
            self.store.upload(part.path, key)
            keys.append(key)
        return keys

    def publish(
        self, staged: Sequence[str], parts: Sequence[StagedPart], manifest: Callable[..., Manifest]
    ) -> Manifest:
        """Copy staged parts to their curated keys, switch the manifest, drop the rest.

        ``manifest(parts=[...])`` builds the manifest once the final part keys are known.
        """
        entries: list[PartEntry] = []
        try:
            for index, (source, part) in enumerate(zip(staged, parts, strict=True)):
                key = run_part_key(self.partition, self.run_token, index)
                self.store.copy(source, key)
                entries.append(self._entry(key, part))
            body = manifest(parts=entries)
            self.store.put_json(self.partition.manifest_key, body)
        except BaseException:
            self._undo([entry["key"] for entry in entries])
            raise
        self.drop_other_versions({entry["key"] for entry in entries})
        self.drop_staging()
        return body

    def _entry(self, key: str, part: StagedPart) -> PartEntry:
        return {
            "key": key,
            "uri": s3_uri(self.store.bucket, key),
            "rows": part.rows,
            "bytes": part.bytes,
        }

    def live_run_token(self) -> str | None:
        manifest = self.store.read_json(self.partition.manifest_key)
        return manifest.get("run_token") if isinstance(manifest, dict) else None

    def _undo(self, copied: Sequence[str]) -> None:
        """Best effort after a failure: unless our manifest went live, remove our copies."""
        try:
            if self.live_run_token() == self.run_token:
                return  # the PUT reached S3 although the call failed: keep the new version
            self.store.delete(copied)
            self.drop_staging()
        except Exception:
            log.exception("cleanup after a failed publish of %s failed", self.partition)

    def drop_other_versions(self, keep: set[str]) -> None:
        prefix = self.partition.curated_prefix
        stale = [
            key
            for key in self.store.keys(prefix)
            if key.endswith(PART_SUFFIX) and key not in keep and "/" not in key[len(prefix) :]
        ]
        self.store.delete(stale)

    def drop_staging(self) -> None:
        self.store.delete(self.store.keys(self.partition.staging_prefix(self.run_token)))
