"""The export registry: one YAML entry per export, validated at DAG parse time.

Adding an export is an entry in ``include/registry/exports.yaml``, not code. Loading is
cheap and offline (no network, no pyarrow): each entry's vendor block is checked by its
vendor package (:meth:`ExportVendor.check_params`, the rules its operator applies before
any request), so a bad entry is a DAG import error that names the entry and the field::

    include/registry/exports.yaml: exports.<name>.<vendor>.<field>: <what is wrong>

Entries sharing a ``dag`` (default ``<vendor>_exports``) become one DAG; they must share
its schedule and timezone.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from compliance_exports.alerts import (
    AlertChannels,
    AlertConfigError,
    Deadline,
    parse_alerts,
    parse_deadline,
)
from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.vendor import ExportKind, ExportVendor, UnknownVendorError, load_vendor
from compliance_exports.landing.layout import Partition
from compliance_exports.landing.quality import QualityPolicy, QualityPolicyError

__all__ = [
    "ExportEntry",
    "ExportKind",
    "LakeTarget",
    "Registry",
    "RegistryError",
    "load_registry",
    "registry_path",
]

#: The registry shipped in the repository (a checkout's default; an installed wheel has none).
DEFAULT_REGISTRY = Path(__file__).resolve().parents[2] / "include" / "registry" / "exports.yaml"
REGISTRY_ENV = "COMPLIANCE_EXPORTS_REGISTRY"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CRON_FIELDS = 5


class RegistryError(ValueError):
    """An invalid registry entry; the message names the file, the entry and the field."""


def parse_duration(text: Any, where: str) -> dt.timedelta:
    """``"90s" | "15m" | "2h" | "1d"`` or a number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text > 0:
        return dt.timedelta(seconds=text)
    match = _DURATION.match(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise RegistryError(f"{where}: {text!r} is not a duration like 90s, 15m, 2h or 1d")
    return dt.timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class LakeTarget:
    bucket: str = "compliance-lake"
    prefix: str = ""
    aws_conn_id: str = "aws_lake"
    sse: str | None = None  # None | "AES256" | "aws:kms"
    kms_key_id: str | None = None
    #: how many versions of a partition to keep, the live one included (None: every
    #: version); housekeeping retires the older ones
    keep_versions: int | None = None
    #: S3 Object Lock for evidence (raw originals, manifests): {mode, days}
    object_lock: Mapping[str, Any] | None = None

    @property
    def object_lock_mode(self) -> str | None:
        return str(self.object_lock["mode"]) if self.object_lock else None

    @property
    def object_lock_days(self) -> int | None:
        return int(self.object_lock["days"]) if self.object_lock else None

    def __post_init__(self) -> None:
        keep = self.keep_versions
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ExportValidationError(
                "lake.keep_versions", f"{keep!r} is not a count >= 1 (omit it to keep all)"
            )
        if self.object_lock is not None:
            lock = self.object_lock
            if not isinstance(lock, Mapping) or set(lock) != {"mode", "days"}:
                raise ExportValidationError(
                    "lake.object_lock", f"{lock!r} must be {{mode: GOVERNANCE|COMPLIANCE, days: N}}"
                )
            from compliance_exports.landing.lake import ObjectLock

            try:
                ObjectLock(lock["mode"], lock["days"])
            except ValueError as exc:
                raise ExportValidationError("lake.object_lock", str(exc)) from None
        if self.sse not in (None, "AES256", "aws:kms"):
            raise ExportValidationError("lake.sse", f"{self.sse!r} is not AES256 or aws:kms")
        if self.sse == "aws:kms" and not self.kms_key_id:
            raise ExportValidationError("lake.kms_key_id", "required when sse is aws:kms")
        if self.kms_key_id and self.sse != "aws:kms":
            raise ExportValidationError("lake.kms_key_id", "only valid with sse: aws:kms")
        if not re.match(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", self.bucket):
            raise ExportValidationError("lake.bucket", f"{self.bucket!r} is not an S3 bucket name")


@dataclass(frozen=True)
class ExportEntry:
    """One export: what to ask the vendor, when, and where it lands."""

    name: str
    vendor: ExportVendor
    dataset: str
    kind: ExportKind
    conn_id: str
    params: Mapping[str, Any]
    schema: Mapping[str, str]
    dag_id: str
    schedule: str
    timezone: str
    pool: str
    lake: LakeTarget
    retries: int
    retry_delay: dt.timedelta
    execution_timeout: dt.timedelta
    wait_timeout: dt.timedelta
    snapshot_grace: dt.timedelta
    resubmits: int = 1
    poll_interval: dt.timedelta = dt.timedelta(seconds=15)
    description: str = ""
    tags: tuple[str, ...] = ()
    #: run ``verify`` over the run's partitions at the end of each DAG run
    verify: bool = False
    #: the columns that identify a row (declared in ``schema``); a snapshot with one
    #: also publishes what changed since the previous published day (``<dataset>__changes``)
    primary_key: tuple[str, ...] = ()
    #: the data-quality checks evaluated before each partition is published (QUALITY.md)
    quality: QualityPolicy = field(default_factory=QualityPolicy)

    #: who hears of failed exports, landing warnings and a missed deadline (README, Alerts)
    alerts: AlertChannels | None = None
    #: landed by this time of day (or this long) after the data interval ends, else an alert
    deadline: Deadline | None = None

    def partition(self, day: dt.date) -> Partition:
        """The lake partition of ``day``: the one place an export's S3 keys come from."""
        return Partition(self.vendor.name, self.dataset, day, self.lake.prefix)

    @property
    def asset_uri(self) -> str:
        base = "/".join(p for p in (self.lake.prefix.strip("/"), "curated") if p)
        return f"s3://{self.lake.bucket}/{base}/vendor={self.vendor.name}/dataset={self.dataset}/"


@dataclass(frozen=True)
class Registry:
    entries: tuple[ExportEntry, ...]
    source: str = ""

    def by_dag(self) -> dict[str, tuple[ExportEntry, ...]]:
        groups: dict[str, list[ExportEntry]] = {}
        for entry in self.entries:
            groups.setdefault(entry.dag_id, []).append(entry)
        return {dag_id: tuple(entries) for dag_id, entries in groups.items()}

    def get(self, name: str) -> ExportEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)


# --- loading ---------------------------------------------------------------------------


def _choice(enum: type[Enum], value: Any, where: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise RegistryError(f"{where}: {value!r} is not one of {allowed}") from None


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RegistryError(
            f"{where}: {value!r} must be lower_snake_case (letters, digits, '_'), "
            "starting with a letter"
        )
    return value


def _check_schedule(schedule: Any, timezone: Any, where: str) -> None:
    if not isinstance(schedule, str) or len(schedule.split()) != _CRON_FIELDS:
        raise RegistryError(f"{where}.schedule: {schedule!r} is not a 5-field cron expression")
    from croniter import croniter

    if not croniter.is_valid(schedule):
        raise RegistryError(f"{where}.schedule: {schedule!r} is not a valid cron expression")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise RegistryError(f"{where}.timezone: {timezone!r} is not an IANA timezone") from None


def _check_schema(schema: Any, where: str) -> Mapping[str, str]:
    from compliance_exports.landing.schema import DatasetSchema

    if not isinstance(schema, Mapping):
        raise RegistryError(f"{where}.schema: must map column names to types")
    try:
        DatasetSchema.from_mapping(schema)
    except (ValueError, TypeError) as exc:
        raise RegistryError(f"{where}.schema: {exc}") from None
    return dict(schema)


_ENTRY_KEYS = {
    "vendor", "dataset", "kind", "conn_id", "schema", "dag", "schedule", "timezone", "pool",
    "lake", "retries", "retry_delay", "execution_timeout", "wait_timeout", "snapshot_grace",
    "resubmits", "poll_interval", "description", "tags", "verify", "primary_key",
    "quality",
    "alerts", "deadline",
}  # fmt: skip


def _entry(name: str, raw: Any, defaults: Mapping[str, Any], where: str) -> ExportEntry:
    if not isinstance(raw, Mapping):
        raise RegistryError(f"{where}: an export entry must be a mapping")
    merged = {**defaults, **raw}
    try:
        vendor = load_vendor(str(merged.get("vendor") or ""))
    except UnknownVendorError as exc:
        raise RegistryError(f"{where}.vendor: {exc}") from None
    unknown = sorted(set(raw) - _ENTRY_KEYS - {vendor.name})
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kind = _choice(ExportKind, merged.get("kind"), f"{where}.kind")
    params = raw.get(vendor.name, {})
    if not isinstance(params, Mapping):
        raise RegistryError(f"{where}.{vendor.name}: must be a mapping of vendor parameters")
    try:
        vendor.check_kind(kind)
        vendor.check_params(params, kind)
    except ExportValidationError as exc:
        raise RegistryError(f"{where}.{vendor.name}.{exc}") from None
    try:
        lake = LakeTarget(**{**defaults.get("lake", {}), **raw.get("lake", {})})
    except ExportValidationError as exc:
        raise RegistryError(f"{where}.{exc}") from None
    except TypeError as exc:
        raise RegistryError(f"{where}.lake: {exc}") from None
    _check_schedule(merged.get("schedule"), merged.get("timezone", "UTC"), where)
    retries = merged.get("retries", 3)
    if not isinstance(retries, int) or retries < 2:
        raise RegistryError(f"{where}.retries: {retries!r}; nightly exports need retries >= 2")
    resubmits = merged.get("resubmits", 1)
    if not isinstance(resubmits, int) or isinstance(resubmits, bool) or resubmits < 0:
        raise RegistryError(f"{where}.resubmits: {resubmits!r} is not a count >= 0")
    return ExportEntry(
        name=name,
        vendor=vendor,
        dataset=_name(merged.get("dataset", name), f"{where}.dataset"),
        kind=kind,
        conn_id=str(merged.get("conn_id", f"{vendor.name}_default")),
        params=dict(params),
        schema=_check_schema(merged.get("schema", {}), where),
        dag_id=_name(merged.get("dag", f"{vendor.name}_exports"), f"{where}.dag"),
        schedule=merged["schedule"],
        timezone=str(merged.get("timezone", "UTC")),
        pool=str(merged.get("pool", vendor.name)),
        lake=lake,
        retries=retries,
        retry_delay=parse_duration(merged.get("retry_delay", "2m"), f"{where}.retry_delay"),
        execution_timeout=parse_duration(
            merged.get("execution_timeout", "2h"), f"{where}.execution_timeout"
        ),
        wait_timeout=parse_duration(merged.get("wait_timeout", "1h"), f"{where}.wait_timeout"),
        snapshot_grace=parse_duration(
            merged.get("snapshot_grace", "36h"), f"{where}.snapshot_grace"
        ),
        resubmits=resubmits,
        poll_interval=parse_duration(merged.get("poll_interval", "15s"), f"{where}.poll_interval"),
        description=str(merged.get("description", "")),
        tags=tuple(str(t) for t in merged.get("tags", ())),
        alerts=_alerts(merged.get("alerts"), where),
        deadline=_deadline(merged.get("deadline"), where),
        verify=_flag(merged.get("verify", False), f"{where}.verify"),
        primary_key=_primary_key(raw.get("primary_key", []), merged.get("schema", {}), where),
        quality=_quality(defaults.get("quality"), raw.get("quality"), where),
    )


def _quality(defaults: Any, own: Any, where: str) -> QualityPolicy:
    """``defaults.quality`` then the entry's ``quality``, merged key by key."""
    for value, place in ((defaults, "defaults.quality"), (own, f"{where}.quality")):
        if value is not None and not isinstance(value, Mapping):
            raise RegistryError(f"{place}: {value!r} is not a mapping of checks")
    try:
        return QualityPolicy.from_mapping({**(defaults or {}), **(own or {})})
    except QualityPolicyError as exc:
        raise RegistryError(f"{where}.{exc}") from None


def _primary_key(value: Any, schema: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """Column names of the declared schema, each once; ``[]`` = none."""
    if isinstance(value, str) or not isinstance(value, list):
        raise RegistryError(f"{where}.primary_key: {value!r} is not a list of column names")
    unknown = [col for col in value if col not in schema]
    if unknown:
        raise RegistryError(
            f"{where}.primary_key: {unknown} not declared in the schema (declare them first)"
        )
    if len(set(value)) != len(value):
        raise RegistryError(f"{where}.primary_key: {value!r} names a column twice")
    return tuple(value)


def _alerts(value: Any, where: str) -> AlertChannels | None:
    try:
        return parse_alerts(value, f"{where}.alerts") or None
    except AlertConfigError as exc:
        raise RegistryError(str(exc)) from None


def _deadline(value: Any, where: str) -> Deadline | None:
    try:
        return parse_deadline(value, f"{where}.deadline")
    except AlertConfigError as exc:
        raise RegistryError(str(exc)) from None


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"{where}: {value!r} is not true or false")
    return value


def _check_dags(entries: tuple[ExportEntry, ...], source: str) -> None:
    for dag_id, group in Registry(entries).by_dag().items():
        first = group[0]
        for other in group[1:]:
            if (other.alerts, other.deadline) != (first.alerts, first.deadline):
                raise RegistryError(
                    f"{source}: exports.{other.name}: shares dag {dag_id!r} with "
                    f"{first.name} but not its alerts/deadline (one DAG, one set of alerts)"
                )
            if (other.schedule, other.timezone) != (first.schedule, first.timezone):
                raise RegistryError(
                    f"{source}: exports.{other.name}: shares dag {dag_id!r} with "
                    f"{first.name} but not its schedule/timezone "
                    f"({other.schedule!r} {other.timezone} vs {first.schedule!r} {first.timezone})"
                )
    targets: dict[tuple[str, str, str, str], str] = {}
    for entry in entries:
        key = (entry.lake.bucket, entry.lake.prefix, entry.vendor.name, entry.dataset)
        if key in targets:
            raise RegistryError(
                f"{source}: exports.{entry.name}: lands in the same dataset as "
                f"{targets[key]} ({entry.vendor.name}/{entry.dataset}); give it its own dataset"
            )
        targets[key] = entry.name


def parse_registry(document: Any, source: str = "<registry>") -> Registry:
    """Validate a registry document (the YAML's content) into typed entries."""
    if not isinstance(document, Mapping) or not isinstance(document.get("exports"), Mapping):
        raise RegistryError(f"{source}: expected a mapping with an 'exports' mapping")
    defaults = document.get("defaults", {}) or {}
    if not isinstance(defaults, Mapping):
        raise RegistryError(f"{source}: defaults must be a mapping")
    entries = []
    for name, raw in document["exports"].items():
        where = f"exports.{name}"
        try:
            entries.append(_entry(_name(name, where), raw, defaults, where))
        except RegistryError as exc:
            raise RegistryError(f"{source}: {exc}") from None
    if not entries:
        raise RegistryError(f"{source}: no exports defined")
    registry = Registry(tuple(entries), source)
    _check_dags(registry.entries, source)
    return registry


def registry_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The registry file: ``path``, else ``$COMPLIANCE_EXPORTS_REGISTRY``, else the
    repository's own (in a checkout only: an installed package has no default)."""
    chosen = path or os.environ.get(REGISTRY_ENV)
    if chosen:
        return Path(chosen)
    if DEFAULT_REGISTRY.is_file():
        return DEFAULT_REGISTRY
    raise RegistryError(
        f"no export registry: set {REGISTRY_ENV} to your registry YAML file "
        '(README, "Add it to your Airflow")'
    )


def load_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Load the registry file (:func:`registry_path`)."""
    target = registry_path(path)
    try:
        document = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{target}: cannot be read as YAML: {exc}") from None
    return parse_registry(document, source=_display(target))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(DEFAULT_REGISTRY.parents[2]))
    except ValueError:
        return str(path)
