"""Maxsight audit events export: the request the client builds, validates and sends.

Documented by Maxsight (DOC): ``GET /v5/audit-sentinel/events/export`` with optional
query parameters ``auditee_id``, ``event_type``, ``sub_type``, ``system_source`` (each
an array of strings), ``file_type`` csv (default) | pdf, ``locale`` (default en),
``metadata[KEY]=value`` for the keys in :data:`METADATA_KEYS`, ``range_start`` /
``range_end`` ISO-8601 UTC and both inclusive, ``timezone`` (IANA); a PDF holds at most
:data:`PDF_EVENT_LIMIT` events; ``range_start`` after ``range_end`` is a 400.

Our CHOICES:

- arrays are sent as repeated keys, ``event_type=a&event_type=b`` (the doc's own sample
  is ``event_type=assessment``; OpenAPI's default form style), never in the undocumented
  bracket form ``event_type[]=a``, which a real API may ignore (an unfiltered export,
  silently) or refuse;
- the model keeps millisecond precision (finer parts are truncated): a bound names a
  whole millisecond. ``range_start`` goes on the wire as UTC with milliseconds and ``Z``
  (``2026-11-21T23:00:00.000Z``), the inclusive ``range_end`` as the last microsecond of
  its millisecond (``2026-11-21T23:59:59.999999Z``), so an event a tenant stamps to the
  microsecond falls in exactly one window and one day; in Python a naive datetime is
  refused;
- ``file_type`` is matched case-insensitively.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from compliance_exports.core.errors import ExportValidationError

PDF_EVENT_LIMIT = 5000
"""DOC: a PDF export holds at most this many events; a larger request fails with 400."""

METADATA_KEYS: tuple[str, ...] = (
    "entity_id",
    "assessment_id",
    "task_id",
    "workflow_instance_id",
    "screening_application_id",
    "screening_config_id",
    "match_id",
    "inquiry_id",
    "tag",
    "cache_id",
    "workflow_step",
)
FILE_TYPES: tuple[str, ...] = ("csv", "pdf")
ARRAY_PARAMETERS: tuple[str, ...] = ("auditee_id", "event_type", "sub_type", "system_source")
DEFAULT_FILE_TYPE = "csv"
DEFAULT_LOCALE = "en"


_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


# --------------------------------------------------------------------------- timestamps


def format_api_timestamp(value: dt.datetime, *, through_millisecond: bool = False) -> str:
    """``2026-11-21T23:00:00.123Z``: UTC, milliseconds, ``Z``.

    ``through_millisecond`` writes the last microsecond of that millisecond
    (``...00.123999Z``): an inclusive ``range_end`` that covers its whole millisecond, so
    events a tenant stamps finer than a millisecond are never left between two windows.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} is naive; Maxsight timestamps need a time zone")
    u = value.astimezone(dt.UTC)
    tail = "999" if through_millisecond else ""
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}{tail}Z"
    )


def parse_api_timestamp(text: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp from the wire into an aware UTC datetime.

    Any fractional precision and any offset are accepted; no offset means UTC.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp")
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _to_millisecond(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(microsecond=value.microsecond // 1000 * 1000)


# --------------------------------------------------------------------------- the query


@dataclass(frozen=True)
class AuditExportQuery:
    """One export request; every part optional, as documented.

    ``range_start``/``range_end`` are aware datetimes, kept in UTC to the millisecond,
    both inclusive. ``metadata`` maps documented keys to the value to match.
    """

    range_start: dt.datetime | None = None
    range_end: dt.datetime | None = None
    auditee_id: tuple[str, ...] = ()
    event_type: tuple[str, ...] = ()
    sub_type: tuple[str, ...] = ()
    system_source: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    file_type: str = DEFAULT_FILE_TYPE
    locale: str = DEFAULT_LOCALE
    timezone: str | None = None

    def __post_init__(self) -> None:
        self._set("range_start", _check_instant("range_start", self.range_start))
        self._set("range_end", _check_instant("range_end", self.range_end))
        _check_range(self.range_start, self.range_end)
        for name in ARRAY_PARAMETERS:
            self._set(name, _check_values(name, getattr(self, name)))
        self._set("metadata", _check_metadata(self.metadata))
        self._set("file_type", _check_file_type(self.file_type))
        _check_locale(self.locale)
        _check_timezone(self.timezone)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __hash__(self) -> int:
        return hash(
            (
                self.range_start,
                self.range_end,
                *(getattr(self, name) for name in ARRAY_PARAMETERS),
                tuple(sorted(self.metadata.items())),
                self.file_type,
                self.locale,
                self.timezone,
            )
        )

    def to_params(self) -> list[tuple[str, str]]:
        """The query string pairs, arrays as repeated keys (see module docstring)."""
        return list(self._pairs())

    def _pairs(self) -> Iterator[tuple[str, str]]:
        if self.range_start is not None:
            yield "range_start", format_api_timestamp(self.range_start)
        if self.range_end is not None:
            yield "range_end", format_api_timestamp(self.range_end, through_millisecond=True)
        for name in ARRAY_PARAMETERS:
            for value in getattr(self, name):
                yield name, value
        for key in sorted(self.metadata):
            yield f"metadata[{key}]", self.metadata[key]
        yield "file_type", self.file_type
        yield "locale", self.locale
        if self.timezone is not None:
            yield "timezone", self.timezone


def _check_instant(name: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise ExportValidationError(name, f"{value!r} is not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ExportValidationError(name, f"{value.isoformat()} is naive; give a time zone (UTC)")
    return _to_millisecond(value)


def _check_range(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise ExportValidationError(
            "range_end",
            f"range_end {format_api_timestamp(end)} is before "
            f"range_start {format_api_timestamp(start)}",
        )


def _check_values(name: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ExportValidationError(name, f"expected a list of strings, got {values!r}")
    checked = tuple(values)
    for i, value in enumerate(checked):
        if not isinstance(value, str) or not value:
            raise ExportValidationError(f"{name}[{i}]", f"{value!r} is not a non-empty string")
    return checked


def _check_metadata(metadata: Any) -> dict[str, str]:
    if not isinstance(metadata, Mapping):
        raise ExportValidationError("metadata", f"expected a mapping, got {metadata!r}")
    for key, value in metadata.items():
        if key not in METADATA_KEYS:
            raise ExportValidationError(
                f"metadata[{key}]", f"unknown key {key!r} (allowed: {', '.join(METADATA_KEYS)})"
            )
        if not isinstance(value, str) or not value:
            raise ExportValidationError(f"metadata[{key}]", f"{value!r} is not a non-empty string")
    return dict(metadata)


def _check_file_type(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in FILE_TYPES:
        raise ExportValidationError(
            "file_type", f"{value!r} is not a file type (allowed: {', '.join(FILE_TYPES)})"
        )
    return value.lower()


def _check_locale(value: Any) -> None:
    if not isinstance(value, str) or not _LOCALE.match(value):
        raise ExportValidationError("locale", f"{value!r} is not a locale (e.g. en, en-GB)")


def _check_timezone(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ExportValidationError("timezone", f"{value!r} is not an IANA time zone name")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ExportValidationError(
            "timezone", f"{value!r} is not an IANA time zone name (e.g. Europe/London)"
        ) from None
