"""The Maxsight export request as the simulator reads it: parameters, instants, matching.

Written from VENDOR_APIS.md section 4 alone (it shares no code with the pipeline).

Documented (DOC):

- every parameter is optional: ``auditee_id``, ``event_type``, ``sub_type``,
  ``system_source`` are "array of strings", sent as repeated keys
  (``event_type=a&event_type=b``; the doc's sample is ``event_type=assessment``);
- ``file_type`` csv (default) | pdf; ``locale`` (default en); ``timezone`` (IANA);
- ``metadata[KEY]=value`` with KEY one of :data:`METADATA_KEYS` (the doc's
  ``metadata[entity_id=<uuid>]`` is a typo of ``metadata[entity_id]=<uuid>``);
- ``range_start`` / ``range_end`` ISO-8601 UTC, **both inclusive**; ``range_start``
  after ``range_end`` is a 400;
- a PDF holds at most :data:`PDF_EVENT_LIMIT` events (the check lives in the app).

Our CHOICES, switchable (see :class:`ParsingRules`): the undocumented bracket form
``event_type[]=a`` is accepted, ignored (silently, an unfiltered export) or refused;
any other unknown parameter is refused (strict, the default) or ignored.

Our CHOICES, fixed: range bounds are read exactly, at any fractional precision, and
kept to the microsecond (a bound written with milliseconds is that instant with 0
microseconds; finer digits round ``range_start`` up and ``range_end`` down, so no
instant outside the written range is selected); a bound without an offset is UTC and
other offsets are honoured; a date alone is its midnight; empty values and repeated
scalar parameters are refused; ``file_type`` is matched case-insensitively; array
values match an event's value exactly, several values of one parameter are ORed and
different parameters are ANDed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PDF_EVENT_LIMIT = 5000
"""DOC: "A PDF holds at most 5,000 events: a request that would exceed it fails with 400"."""

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
"""DOC: the keys of ``metadata[KEY]=value``, in the order VENDOR_APIS.md lists them."""

ARRAYS: tuple[str, ...] = ("auditee_id", "event_type", "sub_type", "system_source")
"""DOC: the "array of strings" parameters."""
SCALARS: tuple[str, ...] = ("range_start", "range_end", "file_type", "locale", "timezone")
FILE_TYPES: tuple[str, ...] = ("csv", "pdf")

BracketArrays = Literal["accept", "ignore", "refuse"]
UnknownParameters = Literal["refuse", "ignore"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ONE_US = dt.timedelta(microseconds=1)

_INSTANT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<hms>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<offset>Z|z|[+-]\d{2}:?\d{2})?$"
)
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_METADATA = re.compile(r"^metadata\[(?P<key>[^\[\]]+)\]$")


class ParameterError(ValueError):
    """A 400: ``source`` names the offending parameter as the client wrote it."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


# --------------------------------------------------------------------------- instants


def parse_instant(text: str, *, round_up: bool = False) -> dt.datetime:
    """An ISO-8601 instant as an aware UTC datetime, to the microsecond.

    DOC: ISO-8601 UTC. CHOICE: no offset means UTC, offsets are honoured; digits past
    the microsecond round down, or up when ``round_up`` (for an inclusive start).
    """
    match = _INSTANT.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp")
    fraction = match["fraction"] or ""
    base = f"{match['date']}T{match['hms'] or '00:00'}"
    try:
        moment = dt.datetime.fromisoformat(base).replace(
            microsecond=int(fraction[:6].ljust(6, "0"))
        )
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp") from None
    if round_up and fraction[6:].strip("0"):
        moment += ONE_US
    return moment.replace(tzinfo=_offset(match["offset"])).astimezone(dt.UTC)


def _offset(text: str | None) -> dt.tzinfo:
    if text is None or text in "Zz":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return dt.timezone(sign * dt.timedelta(minutes=minutes))


def epoch_us(moment: dt.datetime) -> int:
    """Epoch microseconds of an aware datetime (exact)."""
    return (moment - EPOCH) // ONE_US


def from_epoch_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def format_utc(moment: dt.datetime) -> str:
    """``2026-11-20T13:00:00.000Z``, or with 6 digits when the instant has microseconds."""
    utc = moment.astimezone(dt.UTC)
    spec = "milliseconds" if utc.microsecond % 1000 == 0 else "microseconds"
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")


# --------------------------------------------------------------------------- the request


class Selection(Protocol):
    """What selects events: the request below, or any object with the same attributes."""

    @property
    def range_start(self) -> dt.datetime | None: ...
    @property
    def range_end(self) -> dt.datetime | None: ...
    @property
    def auditee_id(self) -> tuple[str, ...]: ...
    @property
    def event_type(self) -> tuple[str, ...]: ...
    @property
    def sub_type(self) -> tuple[str, ...]: ...
    @property
    def system_source(self) -> tuple[str, ...]: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class ExportRequest:
    """One parsed export request; the defaults are the documented ones."""

    range_start: dt.datetime | None = None
    range_end: dt.datetime | None = None
    auditee_id: tuple[str, ...] = ()
    event_type: tuple[str, ...] = ()
    sub_type: tuple[str, ...] = ()
    system_source: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    file_type: str = "csv"  # DOC: csv (default)
    locale: str = "en"  # DOC: default en
    timezone: str | None = None

    @property
    def is_pdf(self) -> bool:
        return self.file_type == "pdf"


def has_filters(selection: Selection) -> bool:
    """Whether anything but the time range narrows the selection."""
    return any(getattr(selection, name) for name in ARRAYS) or bool(selection.metadata)


def matches(selection: Selection, event: Mapping[str, Any]) -> bool:
    """DOC filters (time range aside): values of one parameter OR, parameters AND."""
    for name in ARRAYS:
        wanted = getattr(selection, name)
        if wanted and event.get(name) not in wanted:
            return False
    return all(event.get(key) == value for key, value in selection.metadata.items())


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsingRules:
    """The CHOICES of parsing (fields of the simulator settings of the same names)."""

    bracket_arrays: BracketArrays = "accept"
    unknown_parameters: UnknownParameters = "refuse"


@dataclass
class _Collected:
    arrays: dict[str, list[str]] = field(default_factory=lambda: {n: [] for n in ARRAYS})
    scalars: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def parse_request(items: Iterable[tuple[str, str]], rules: ParsingRules) -> ExportRequest:
    """The request of query-string pairs; :class:`ParameterError` names a bad one."""
    collected = _Collected()
    for name, value in items:
        _collect(collected, name, value, rules)
    return _build(collected)


def _collect(collected: _Collected, name: str, value: str, rules: ParsingRules) -> None:
    if name.endswith("[]") and name[:-2] in ARRAYS:
        _bracketed(collected, name, value, rules.bracket_arrays)
    elif name in ARRAYS:
        collected.arrays[name].append(_non_empty(name, value))
    elif name in SCALARS:
        _once(collected.scalars, name, name, _non_empty(name, value))
    elif (found := _METADATA.match(name)) and found["key"] in METADATA_KEYS:
        _once(collected.metadata, found["key"], name, _non_empty(name, value))
    elif rules.unknown_parameters == "refuse":
        raise ParameterError(name, "is not a parameter of the audit events export")


def _bracketed(collected: _Collected, name: str, value: str, rule: BracketArrays) -> None:
    """CHOICE: the undocumented ``event_type[]=a`` form."""
    if rule == "refuse":
        raise ParameterError(name, f"is not documented; repeat the key: {name[:-2]}=...")
    if rule == "accept":
        collected.arrays[name[:-2]].append(_non_empty(name, value))


def _non_empty(name: str, value: str) -> str:
    if value == "":
        raise ParameterError(name, "has an empty value")
    return value


def _once(target: dict[str, str], key: str, name: str, value: str) -> None:
    if key in target:
        raise ParameterError(name, "is given more than once")
    target[key] = value


def _build(collected: _Collected) -> ExportRequest:
    scalars = collected.scalars
    start = _bound("range_start", scalars.get("range_start"), round_up=True)
    end = _bound("range_end", scalars.get("range_end"), round_up=False)
    if start is not None and end is not None and start > end:
        raise ParameterError(
            "range_end", f"range_end {format_utc(end)} is before range_start {format_utc(start)}"
        )
    return ExportRequest(
        range_start=start,
        range_end=end,
        metadata=collected.metadata,
        file_type=_file_type(scalars.get("file_type", "csv")),
        locale=_locale(scalars.get("locale", "en")),
        timezone=_timezone(scalars.get("timezone")),
        **{name: tuple(values) for name, values in collected.arrays.items()},
    )


def _bound(name: str, text: str | None, *, round_up: bool) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return parse_instant(text, round_up=round_up)
    except ValueError as exc:
        raise ParameterError(name, str(exc)) from None


def _file_type(value: str) -> str:
    if value.lower() not in FILE_TYPES:
        raise ParameterError("file_type", f"{value!r} is not one of {', '.join(FILE_TYPES)}")
    return value.lower()


def _locale(value: str) -> str:
    if not _LOCALE.match(value):
        raise ParameterError("locale", f"{value!r} is not a locale (e.g. en, en-GB)")
    return value


def _timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ParameterError("timezone", f"{value!r} is not an IANA time zone name") from None
    return value
