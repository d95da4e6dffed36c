"""Maxsight audit events export simulator (synchronous CSV or PDF, ``apikey`` header).

Written from VENDOR_APIS.md section 4 alone; it shares no code with the pipeline. The
request rules (parameters, arrays, ranges, matching) are in
:mod:`include.simulators.maxsight_query`.

Reproduced as documented (DOC): ``GET /v5/audit-sentinel/events/export`` answered with
the file itself (no job, no polling); the ``apikey`` header (401 on a bad key); the
filters ``auditee_id``, ``event_type``, ``sub_type``, ``system_source`` (arrays as
repeated keys) and ``metadata[KEY]=value`` for the documented keys; ``range_start`` and
``range_end`` inclusive at both ends; ``range_start`` after ``range_end`` is a 400;
``timezone`` (IANA) and ``locale`` (default en) shape the rendered times; ``file_type``
csv (default) or pdf; a PDF of more than 5,000 events is a 400 (``pdf_event_limit``,
lower it for tests); ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset-Secs``; requests
time out after 60 s. There is no count endpoint (DOC gap): the simulator states counts
only under ``/_sim`` (``GET /_sim/count`` takes the export's query parameters,
``GET /_sim/facts`` describes the event store).

Our CHOICES, switchable in :class:`MaxsightSettings` (see :data:`HOSTILE` for the least
convenient of each): the bracket form ``event_type[]=a`` (``bracket_arrays``), unknown
parameters (``unknown_parameters``), the precision events are stamped with
(``timestamp_precision``), the error body (``error_body``), the event order
(``event_order``), the rate headers on the export (``rate_limit_headers``) and
``Retry-After`` on a 429 (``retry_after``).

Our CHOICES, fixed: over the rate limit the answer is 429; CSV is UTF-8 with CRLF line
ends (``text/csv``); the columns are :data:`COLUMNS`; the ``timestamp`` column is
ISO-8601 with milliseconds (microseconds when stamped so) and the offset of
``timezone`` (UTC when absent) for English locales (``en``, ``en-GB``...),
``15.10.2026 15:05:07,123 +02:00`` for ``de``, ``15/10/2026 15:05:07,123 +02:00`` for
``fr``; any other language renders as English; the ``description`` embeds the same
instant in the locale's human form.

The event store (:class:`EventStore`) is a sorted ``array('q')`` of epoch microseconds
(8 bytes an event; whole milliseconds unless ``timestamp_precision`` is ``"us"``),
built without sorting from seeded exponential spacings; every other attribute of event
``i`` is derived from ``(seed, i)`` when needed. Its shape over time is set by
:class:`MaxsightSettings`: ``events`` spread uniformly over ``[store_start,
store_end]``, plus ``burst_events`` inside ``burst_seconds`` from ``burst_start``
(bursty), plus ``instant_events`` all stamped ``instant_at`` (one instant over the PDF
limit).

Requests time out after ``request_timeout`` (60 s, DOC) with a 504; ``latency`` delays
every export answer (set it above the timeout to see the 504).

Faults: ``rate_limit`` (429, Retry-After in either form), ``server_error``,
``drop_connection`` and ``truncate`` (the export body cut after ``after_bytes``).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import heapq
import itertools
import math
import random
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from include.simulators import RunningSimulator
from include.simulators.base import Fault, SimState, SimulatorServer, install_common, new_state
from include.simulators.clock import at, days_ago
from include.simulators.data import Column, Dataset, Row, RowRandom, csv_chunks, download_response
from include.simulators.maxsight_query import (
    METADATA_KEYS,
    PDF_EVENT_LIMIT,
    BracketArrays,
    ExportRequest,
    ParameterError,
    ParsingRules,
    Selection,
    UnknownParameters,
    epoch_us,
    format_utc,
    from_epoch_us,
    has_filters,
    matches,
    parse_instant,
    parse_request,
)
from include.simulators.maxsight_web import (
    SimulatedResponse,
    new_spool,
    simulator_app,
    sized_for_cuts,
    spool_file,
)
from include.simulators.pdf import write_table_pdf

EXPORT_PATH = "/v5/audit-sentinel/events/export"
COLUMNS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "auditee_id",
    "auditee_name",
    "auditee_type",
    "event_type",
    "sub_type",
    "system_source",
    "description",
    "entity_id",
    "assessment_id",
    "task_id",
    "workflow_instance_id",
)
"""CHOICE (VENDOR_APIS.md): the columns of the CSV and of the PDF table."""
PDF_WEIGHTS = (4.0, 2.6, 1.1, 1.8, 0.9, 1.1, 1.2, 1.3, 4.0, 0.9, 0.9, 0.9, 1.0)  # ids whole

Precision = Literal["ms", "us"]
ErrorBody = Literal["errors", "text", "empty"]
EventOrder = Literal["ascending", "descending"]
CHOICES: Mapping[str, tuple[Any, ...]] = {
    "bracket_arrays": ("accept", "ignore", "refuse"),
    "unknown_parameters": ("refuse", "ignore"),
    "timestamp_precision": ("ms", "us"),
    "error_body": ("errors", "text", "empty"),
    "event_order": ("ascending", "descending"),
    "rate_limit_headers": (True, False),
    "retry_after": (True, False),
}
"""The switchable CHOICE settings and their allowed values (the first is the default)."""
UNIT_US: Mapping[str, int] = {"ms": 1000, "us": 1}
"""Microseconds in one stamping unit of each ``timestamp_precision``."""


@dataclass
class MaxsightSettings:
    """Runtime behaviour; every field can be patched at ``/_sim/config``.

    The fields after ``request_timeout`` are the CHOICES of :data:`CHOICES`.
    """

    api_key: str = "maxsight-sim-key"
    events: int = 2_000  # spread uniformly over [store_start, store_end]
    # the 31 days that end with SIM_TODAY (include/simulators/clock.py), to its last µs
    store_start: str = at(days_ago(30))
    store_end: str = at(days_ago(0), "23:59:59.999999")
    burst_events: int = 0  # bursty: this many more inside burst_seconds from burst_start
    burst_start: str = at(days_ago(16), "13:00:00.000")
    burst_seconds: float = 3_600.0
    instant_events: int = 0  # this many more, all stamped instant_at
    instant_at: str = at(days_ago(11), "08:30:00.250")
    auditees: int = 40
    pdf_event_limit: int = PDF_EVENT_LIMIT  # DOC: 5,000
    rate_limit: int = 600  # requests per key per window
    rate_window: float = 60.0  # seconds
    latency: float = 0.0  # seconds before an export starts answering
    request_timeout: float = 60.0  # DOC: requests time out (504) after this many seconds
    # CHOICE: event_type[]=a is read as event_type=a, ignored (unfiltered) or a 400
    bracket_arrays: BracketArrays = "accept"
    # CHOICE: any other parameter it does not know is a 400 naming it (strict) or ignored
    unknown_parameters: UnknownParameters = "refuse"
    # CHOICE: events stamped to the millisecond or to the microsecond
    timestamp_precision: Precision = "ms"
    # CHOICE: {"errors": [{"code", "message", "source"}]}, the message as text/plain, or no body
    error_body: ErrorBody = "errors"
    # CHOICE: rows oldest first or newest first
    event_order: EventOrder = "ascending"
    # CHOICE: X-RateLimit-Remaining / X-RateLimit-Reset-Secs on export answers (DOC: "some")
    rate_limit_headers: bool = True
    # CHOICE: Retry-After on a 429
    retry_after: bool = True

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        for name in ("events", "burst_events", "instant_events"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.auditees < 1 or self.pdf_event_limit < 1 or self.rate_limit < 1:
            raise ValueError("auditees, pdf_event_limit and rate_limit must be >= 1")
        if self.burst_seconds <= 0 or self.rate_window <= 0 or self.request_timeout <= 0:
            raise ValueError("burst_seconds, rate_window and request_timeout must be positive")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}")
        if self.stamp(self.store_end) < self.stamp(self.store_start):
            raise ValueError("store_end is before store_start")

    @property
    def unit(self) -> int:
        """Microseconds in one stamping unit (1000 for ``ms``, 1 for ``us``)."""
        return UNIT_US[self.timestamp_precision]

    def stamp(self, text: str) -> int:
        """Epoch microseconds of a settings instant, truncated to the stamping unit."""
        return epoch_us(parse_instant(text)) // self.unit * self.unit

    def rules(self) -> ParsingRules:
        return ParsingRules(self.bracket_arrays, self.unknown_parameters)

    def store_shape(self) -> tuple[Any, ...]:
        """What the event store is built from (a changed shape rebuilds the store)."""
        return (
            self.events,
            self.store_start,
            self.store_end,
            self.burst_events,
            self.burst_start,
            self.burst_seconds,
            self.instant_events,
            self.instant_at,
            self.auditees,
            self.timestamp_precision,
        )


HOSTILE: dict[str, Any] = {
    # brackets are undocumented: a silently unfiltered export, the hardest to notice
    "bracket_arrays": "ignore",
    # strict: any parameter outside the doc is a 400 (the documented client sends none)
    "unknown_parameters": "refuse",
    # finer than the millisecond the client formats its bounds with
    "timestamp_precision": "us",
    # the body is unpublished: a bare text message, no JSON envelope to parse
    "error_body": "text",
    # the doc promises no order: newest first
    "event_order": "descending",
    # the doc puts the rate headers on "some endpoints": not on this one
    "rate_limit_headers": False,
    # Retry-After is not documented: a 429 says nothing about when to come back
    "retry_after": False,
}
"""Every Maxsight CHOICE at its least convenient documented-compatible value."""


# --------------------------------------------------------------------------- event store


def spread(seed: str, count: int, first: int, last: int) -> Iterator[int]:
    """``count`` sorted instants uniform on ``[first, last]`` ms, without sorting.

    The gaps between uniform order statistics are exponential: the first pass sums
    ``count + 1`` seeded exponential gaps, the second replays them cumulatively.
    """
    if count == 0:
        return
    total = sum(_gaps(seed, count + 1))
    width = last - first
    running = 0.0
    for gap in _gaps(seed, count):
        running += gap
        yield first + min(width, int(width * running / total))


def _gaps(seed: str, count: int) -> Iterator[float]:
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.expovariate(1.0)


EVENT_KINDS: Mapping[str, tuple[str, ...]] = {
    "assessment": ("created", "updated", "approved", "rejected"),
    "task": ("created", "assigned", "completed", "reopened"),
    "workflow": ("started", "step_completed", "finished", "cancelled"),
    "screening": ("match_found", "match_dismissed", "config_changed"),
    "user": ("login", "logout", "role_changed", "api_key_created"),
}
SYSTEM_SOURCES = ("web_app", "api", "workflow_engine", "screening_service", "scheduler")
AUDITEE_TYPES = ("user", "api_key", "system")
TAGS = ("kyc", "aml", "pep", "sanctions", "onboarding", "periodic-review")
WORKFLOW_STEPS = ("intake", "document_check", "review", "approval", "closure")


def _auditee(r: RowRandom, index: int) -> Row:
    first, last = r.person()
    kind = AUDITEE_TYPES[0] if r.below(6) else r.choice(AUDITEE_TYPES[1:])
    name = r.full_name(first, last) if kind == "user" else f"{kind}-{r.digits(4)}"
    return {
        "auditee_id": r.digits(8, leading_zeros=0.5),
        "auditee_name": name,
        "auditee_type": kind,
    }


AUDITEES = Dataset(
    "maxsight.auditees",
    (Column("auditee_id"), Column("auditee_name"), Column("auditee_type", "enum")),
    _auditee,
)


_WORD = 1 << 32
EVENT_TYPES = tuple(EVENT_KINDS)
DETAILS = ("", " (via SSO)", ', note: "escalated"', " \u2014 r\u00e9vision")


def _pick(r: RowRandom, options: Sequence[str], blank: float) -> str | None:
    """One of ``options``, or a blank (``None``) with probability ``blank``: one draw."""
    roll = r.bits()
    return None if roll < blank * _WORD else options[roll % len(options)]


def _pool(prefix: str, size: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{n:06d}" for n in range(size))


METADATA_POOLS: Mapping[str, tuple[tuple[str, ...], float]] = {
    "entity_id": (_pool("", 300), 0.1),
    "assessment_id": (_pool("as-", 120), 0.4),
    "task_id": (_pool("tk-", 200), 0.5),
    "workflow_instance_id": (_pool("wf-", 80), 0.5),
    "screening_application_id": (_pool("sa-", 50), 0.6),
    "screening_config_id": (_pool("sc-", 10), 0.6),
    "match_id": (_pool("mt-", 400), 0.8),
    "inquiry_id": (_pool("iq-", 150), 0.7),
    "tag": (TAGS, 0.3),
    "cache_id": (_pool("ch-", 30), 0.8),
    "workflow_step": (WORKFLOW_STEPS, 0.4),
}
"""Each metadata key's values and how often it is blank (values repeat so filters match)."""


def _event_attributes(r: RowRandom, index: int) -> Row:
    event_type = r.choice(EVENT_TYPES)
    row: Row = {
        "event_id": r.uuid(),
        "auditee_index": r.bits(),
        "event_type": event_type,
        "sub_type": r.choice(EVENT_KINDS[event_type]),
        "system_source": r.choice(SYSTEM_SOURCES),
        "detail": r.choice(DETAILS),
    }
    for key, (values, blank) in METADATA_POOLS.items():
        row[key] = _pick(r, values, blank)
    return row


EVENTS = Dataset(
    "maxsight.events",
    tuple(Column(c) for c in ("event_id", "event_type", "sub_type", *METADATA_KEYS)),
    _event_attributes,
)


class EventStore:
    """Every audit event of the tenant, addressable by index in time order."""

    def __init__(self, settings: MaxsightSettings, seed: int) -> None:
        self.seed = seed
        self.shape = settings.store_shape()
        self.auditee_count = settings.auditees
        self.stamps = array("q")  # epoch microseconds, ascending
        self.stamps.extend(heapq.merge(*self._segments(settings)))
        self._event_key = EVENTS.key(seed)
        self._auditee_key = AUDITEES.key(seed)
        self._auditees: dict[int, Row] = {}  # at most ``auditees`` small rows

    def _segments(self, s: MaxsightSettings) -> list[Iterator[int]]:
        """Instants drawn in stamping units, kept as epoch microseconds."""
        unit = s.unit
        burst_first = s.stamp(s.burst_start) // unit
        burst_last = burst_first + max(0, math.ceil(s.burst_seconds * 1_000_000 / unit) - 1)
        first, last = s.stamp(s.store_start) // unit, s.stamp(s.store_end) // unit
        units = [
            spread(f"{self.seed}/uniform", s.events, first, last),
            spread(f"{self.seed}/burst", s.burst_events, burst_first, burst_last),
            itertools.repeat(s.stamp(s.instant_at) // unit, s.instant_events),
        ]
        return [(n * unit for n in segment) for segment in units]

    def __len__(self) -> int:
        return len(self.stamps)

    def span(self, selection: Selection) -> range:
        """DOC: the indices inside ``[range_start, range_end]``, both ends inclusive."""
        low, high = 0, len(self.stamps)
        if selection.range_start is not None:
            low = bisect.bisect_left(self.stamps, epoch_us(selection.range_start))
        if selection.range_end is not None:
            high = bisect.bisect_right(self.stamps, epoch_us(selection.range_end))
        return range(low, max(low, high))

    def event(self, index: int) -> Row:
        """Event ``index``: its attributes from ``(seed, index)``, its instant from the store."""
        row = EVENTS.row_at(self._event_key, index)
        row.update(self._auditee(row.pop("auditee_index") % self.auditee_count))
        row["timestamp"] = from_epoch_us(self.stamps[index])
        return row

    def _auditee(self, number: int) -> Row:
        auditee = self._auditees.get(number)
        if auditee is None:
            auditee = self._auditees[number] = AUDITEES.row_at(self._auditee_key, number)
        return auditee

    def select(self, selection: Selection, order: EventOrder = "ascending") -> Iterator[Row]:
        """The events the selection selects, in time order (CHOICE: either direction)."""
        filtered = has_filters(selection)
        indices = self.span(selection)
        for index in reversed(indices) if order == "descending" else indices:
            event = self.event(index)
            if not filtered or matches(selection, event):
                yield event

    def count(self, selection: Selection) -> int:
        if not has_filters(selection):
            return len(self.span(selection))
        return sum(1 for _ in self.select(selection))

    def describe(self) -> dict[str, Any]:
        first = format_utc(from_epoch_us(self.stamps[0])) if self.stamps else None
        last = format_utc(from_epoch_us(self.stamps[-1])) if self.stamps else None
        return {"total": len(self.stamps), "first": first, "last": last}


# --------------------------------------------------------------------------- rendering

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PHRASES = {
    "en": "{who} {what} on {when}",
    "de": "{who}: {what} am {when}",
    "fr": "{who} : {what} le {when}",
}


def language(locale: str) -> str:
    """The rendering language of a locale: de, fr, or en for everything else."""
    lang = locale.replace("_", "-").split("-")[0].lower()
    return lang if lang in _PHRASES else "en"


def _offset(moment: dt.datetime) -> str:
    return moment.isoformat()[-6:]


def render_timestamp(moment: dt.datetime, lang: str, precision: Precision = "ms") -> str:
    """The ``timestamp`` column: ISO-8601 with offset for en, day-first for de and fr."""
    fraction = f"{moment.microsecond:06d}" if precision == "us" else f"{moment:%f}"[:3]
    clock = f"{moment:%H:%M:%S}"
    if lang == "de":
        return f"{moment:%d.%m.%Y} {clock},{fraction} {_offset(moment)}"
    if lang == "fr":
        return f"{moment:%d/%m/%Y} {clock},{fraction} {_offset(moment)}"
    return moment.isoformat(timespec="microseconds" if precision == "us" else "milliseconds")


def render_human(moment: dt.datetime, lang: str) -> str:
    """The instant as the description shows it."""
    if lang == "de":
        return f"{moment:%d.%m.%Y, %H:%M:%S} ({_offset(moment)})"
    if lang == "fr":
        return f"{moment:%d/%m/%Y %H:%M:%S} ({_offset(moment)})"
    hour = moment.hour % 12 or 12
    noon = "AM" if moment.hour < 12 else "PM"
    month = _MONTHS[moment.month - 1]
    return f"{month} {moment.day}, {moment.year}, {hour}:{moment:%M:%S} {noon} ({_offset(moment)})"


class EventRenderer:
    """Turns store events into export rows for one request's locale and time zone."""

    def __init__(self, request: ExportRequest | Any, precision: Precision = "ms") -> None:
        self.zone = ZoneInfo(request.timezone) if request.timezone else dt.UTC
        self.lang = language(request.locale)
        self.precision = precision

    def row(self, event: Row) -> list[str]:
        moment = event["timestamp"].astimezone(self.zone)
        what = f"{event['event_type']} {event['sub_type'].replace('_', ' ')}{event['detail']}"
        description = _PHRASES[self.lang].format(
            who=event["auditee_name"], what=what, when=render_human(moment, self.lang)
        )
        values = {**event, "timestamp": render_timestamp(moment, self.lang, self.precision)}
        values["description"] = description
        return ["" if values.get(c) is None else str(values[c]) for c in COLUMNS]

    def rows(self, events: Iterator[Row]) -> Iterator[list[str]]:
        return (self.row(event) for event in events)

    def named_rows(self, events: Iterator[Row]) -> Iterator[dict[str, str]]:
        return (dict(zip(COLUMNS, self.row(event), strict=True)) for event in events)


# --------------------------------------------------------------------------- errors


def error_response(
    status: int,
    code: str,
    message: str,
    source: str = "API",
    headers: Mapping[str, str] | None = None,
    shape: ErrorBody = "errors",
) -> Response:
    """CHOICE (the body is unpublished): ``{"errors": [{"code", "message", "source"}]}``,
    the message alone as ``text/plain``, or an empty body (``shape``)."""
    if shape == "text":
        return PlainTextResponse(message, status_code=status, headers=dict(headers or {}))
    if shape == "empty":
        return Response(status_code=status, headers=dict(headers or {}))
    body = {"errors": [{"code": code, "message": message, "source": source}]}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


class RateLimit:
    """A fixed window of ``rate_limit`` requests per API key."""

    def __init__(self, settings: MaxsightSettings) -> None:
        self.settings = settings
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> tuple[int, int]:
        """Count one request; return (remaining, seconds until the window resets)."""
        now = time.time()
        window = self.settings.rate_window
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now - start >= window:
                start, used = now, 0
            used += 1
            self._windows[key] = (start, used)
        reset = max(1, math.ceil(start + window - now))
        return self.settings.rate_limit - used, reset


# --------------------------------------------------------------------------- the app


@dataclass
class ExportRecord:
    """What ``/_sim/facts`` says about one export request."""

    query: str
    file_type: str
    status: str = "started"  # "sent" once the whole body went out (a cut body stays started)
    rows: int = 0  # rows written so far
    matching: int | None = None  # events the query selects (known up front for PDFs)


class MaxsightApi:
    def __init__(self, state: SimState, settings: MaxsightSettings) -> None:
        self.state = state
        self.settings = settings
        self.rate = RateLimit(settings)
        self.exports: list[ExportRecord] = []
        self._store: EventStore | None = None
        self._store_lock = threading.Lock()

    def store(self) -> EventStore:
        """The event store, rebuilt when its shape settings were patched."""
        with self._store_lock:
            if self._store is None or self._store.shape != self.settings.store_shape():
                self.settings.check()
                self._store = EventStore(self.settings, self.state.seed)
            return self._store

    def facts(self) -> dict[str, Any]:
        store = self.store()
        return {
            "events": {**store.describe(), "settings": asdict(self.settings)},
            "exports": {f"export-{i:06d}": asdict(e) for i, e in enumerate(self.exports, 1)},
        }

    def error(
        self,
        status: int,
        code: str,
        message: str,
        source: str = "API",
        headers: Mapping[str, str] | None = None,
    ) -> SimulatedResponse:
        """An error answer in the configured ``error_body`` shape, ready to raise."""
        shape = self.settings.error_body
        return SimulatedResponse(error_response(status, code, message, source, headers, shape))

    def guard(self, request: Request) -> dict[str, str]:
        """Check the key, count the request, inject faults; return the rate headers."""
        key = request.headers.get("apikey")
        if key != self.settings.api_key:
            raise self.error(401, "unauthorized", "Missing or invalid API key.", "apikey")
        remaining, reset = self.rate.take(key)
        headers = self._rate_headers(max(0, remaining), reset)
        path = request.url.path
        if fault := self.state.faults.take("rate_limit", path):
            headers = {**self._rate_headers(0, reset), **self._retry(fault.retry_after_header())}
            raise self._rate_limited(headers)
        if remaining < 0:
            raise self._rate_limited({**headers, **self._retry(str(reset))})
        if fault := self.state.faults.take("server_error", path):
            message = f"Internal server error (simulated, HTTP {fault.status})."
            raise self.error(fault.status, "server_error", message)
        return headers

    def _rate_headers(self, remaining: int, reset: int) -> dict[str, str]:
        """DOC: ``X-RateLimit-Remaining``, ``X-RateLimit-Reset-Secs`` (CHOICE: sent or not)."""
        if not self.settings.rate_limit_headers:
            return {}
        return {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset-Secs": str(reset)}

    def _retry(self, value: str) -> dict[str, str]:
        """CHOICE: ``Retry-After`` on a 429, or nothing."""
        return {"Retry-After": value} if self.settings.retry_after else {}

    async def think(self, headers: dict[str, str]) -> None:
        """Wait ``latency`` before answering; past ``request_timeout`` the answer is a 504."""
        latency, timeout = self.settings.latency, self.settings.request_timeout
        await asyncio.sleep(min(latency, timeout))
        if latency >= timeout:
            message = f"The request did not complete within {timeout:g} seconds."
            raise self.error(504, "timeout", message, "API", headers)

    def _rate_limited(self, headers: dict[str, str]) -> SimulatedResponse:
        return self.error(429, "rate_limited", "Too many requests.", "API", headers)

    def parse(self, request: Request, headers: Mapping[str, str] | None = None) -> ExportRequest:
        """The export request of ``request``; a 400 naming the parameter when it is bad."""
        try:
            return parse_request(request.query_params.multi_items(), self.settings.rules())
        except ParameterError as exc:
            raise self.error(400, "invalid_parameter", str(exc), exc.source, headers) from None

    async def export(self, request: Request) -> Response:
        headers = self.guard(request)
        query = self.parse(request, headers)
        await self.think(headers)
        store = await run_in_threadpool(self.store)
        record = ExportRecord(query=request.url.query, file_type=query.file_type)
        if query.is_pdf:
            record.matching = await run_in_threadpool(store.count, query)
            self._check_pdf_limit(record.matching, headers)
        self.exports.append(record)
        return await self._file(request, store, query, record, headers)

    def _check_pdf_limit(self, matching: int, headers: Mapping[str, str]) -> None:
        """DOC: "A PDF holds at most 5,000 events: a request that would exceed it fails
        with 400"."""
        limit = self.settings.pdf_event_limit
        if matching > limit:
            message = (
                f"The export selects {matching} events; a PDF holds at most "
                f"{limit}. Use file_type=csv or narrow the filters."
            )
            raise self.error(400, "pdf_event_limit", message, "file_type", headers)

    async def _file(
        self,
        request: Request,
        store: EventStore,
        query: ExportRequest,
        record: ExportRecord,
        headers: dict[str, str],
    ) -> Response:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"audit-events-{stamp}.{query.file_type}"
        headers = {**headers, "Content-Disposition": f'attachment; filename="{name}"'}
        size: int | None = None
        if query.is_pdf:
            chunks, size = await run_in_threadpool(self._pdf, store, query, record)
            media_type = "application/pdf"
        else:
            chunks, media_type = self._csv(store, query, record), "text/csv; charset=utf-8"
        chunks, size = await sized_for_cuts(self.state.faults, request.url.path, chunks, size)

        def sent() -> None:
            record.status = "sent"

        return download_response(
            self.state,
            request.url.path,
            chunks=chunks,
            size=size,
            media_type=media_type,
            headers=headers,
            on_complete=sent,
        )

    def _renderer(self, query: ExportRequest) -> EventRenderer:
        return EventRenderer(query, self.settings.timestamp_precision)

    def _csv(
        self, store: EventStore, query: ExportRequest, record: ExportRecord
    ) -> Iterator[bytes]:
        def count() -> None:
            record.rows += 1

        events = store.select(query, self.settings.event_order)
        return csv_chunks(COLUMNS, self._renderer(query).named_rows(events), on_row=count)

    def _pdf(
        self, store: EventStore, query: ExportRequest, record: ExportRecord
    ) -> tuple[Iterator[bytes], int]:
        spool = new_spool()
        record.rows = write_table_pdf(
            spool,
            title=f"Audit events \u2014 {request_summary(query)}",
            columns=COLUMNS,
            rows=self._renderer(query).rows(store.select(query, self.settings.event_order)),
            total=record.matching or 0,
            weights=PDF_WEIGHTS,
        )
        size = spool.tell()
        spool.seek(0)
        return spool_file(spool), size

    def count(self, request: Request) -> Response:
        """``/_sim/count`` (admin only): the events the export with these parameters selects."""
        query = self.parse(request)
        return JSONResponse({"count": self.store().count(query)})


def request_summary(query: ExportRequest) -> str:
    start = format_utc(query.range_start) if query.range_start else "beginning"
    end = format_utc(query.range_end) if query.range_end else "now"
    return f"{start} to {end}"


def build_app(
    settings: MaxsightSettings | None = None,
    *,
    seed: int = 0,
    faults: Iterable[Fault | dict[str, Any]] = (),
) -> FastAPI:
    """The Maxsight simulator app (the export endpoint and ``/_sim``)."""
    settings = settings or MaxsightSettings()
    state = new_state("maxsight", seed=seed, settings=settings, faults=faults)
    api = MaxsightApi(state, settings)
    app = simulator_app("Maxsight audit events export (simulator)", api)

    @app.middleware("http")
    async def _fresh_facts(request: Request, call_next: Any) -> Response:
        if request.url.path == "/_sim/facts":
            state.facts.update(await run_in_threadpool(api.facts))
        response: Response = await call_next(request)
        return response

    app.add_api_route(EXPORT_PATH, api.export, methods=["GET"])
    app.add_api_route("/_sim/count", api.count, methods=["GET"], tags=["simulator admin"])
    install_common(app, state)
    return app


def start(
    *, host: str = "127.0.0.1", port: int = 0, seed: int = 0, **settings: Any
) -> RunningSimulator:
    """Start the simulator on ``host:port`` (0: a free port) and describe its connection."""
    faults = settings.pop("faults", [])
    config = MaxsightSettings(**settings)
    server = SimulatorServer(build_app(config, seed=seed, faults=faults), host, port).start()
    return RunningSimulator(
        vendor="maxsight",
        base_url=server.base_url,
        credentials={"login": "", "password": config.api_key},
        extra={},
        servers=[server],
    )
