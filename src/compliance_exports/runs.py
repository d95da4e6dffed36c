"""What one DAG run exports: the trigger form's parameters and the data interval, resolved.

Pure (no Airflow import): the DAG's planning task calls :func:`plan_slices` with the
run's data interval and params, and maps the export's tasks over the slices it returns.
A *slice* is one partition day of one export.

Rules (README, "Scheduling, manual runs and backfills"):

* windowed exports get one slice per calendar day (in the registry's timezone) of the
  data interval, or of the trigger form's ``range_start``..``range_end`` (inclusive);
* snapshot exports return the vendor's *current* state, so they run only for an interval
  that ended less than ``snapshot_grace`` ago: a backfill never labels today's snapshot
  as history (the run logs why it skipped); a snapshot slice records its extraction time;
* ``exports`` (a subset chosen in the form) skips the others; ``dry_run`` plans and
  validates without contacting any vendor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from compliance_exports.core.errors import ExportValidationError


class NothingToExport(Exception):
    """This export has nothing to do in this run; the message says why (logged, skipped)."""


@dataclass(frozen=True)
class RunRequest:
    """The trigger form's parameters, validated."""

    exports: tuple[str, ...] = ()
    range_start: dt.date | None = None
    range_end: dt.date | None = None
    dry_run: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any], known: Sequence[str]) -> RunRequest:
        exports = tuple(params.get("exports") or ())
        unknown = sorted(set(exports) - set(known))
        if unknown:
            raise ExportValidationError(
                "params.exports", f"unknown export(s) {unknown}; this DAG has {sorted(known)}"
            )
        start = _date_param(params, "range_start")
        end = _date_param(params, "range_end")
        if (start is None) != (end is None):
            raise ExportValidationError(
                "params.range_start" if start is None else "params.range_end",
                "set both range_start and range_end, or neither",
            )
        if start and end and end < start:
            raise ExportValidationError("params.range_end", f"{end} is before range_start {start}")
        return cls(exports, start, end, is_dry_run(params))


def is_dry_run(params: Mapping[str, Any]) -> bool:
    """Whether trigger parameters (a run's params or conf) ask for the dry run."""
    return bool(params.get("dry_run", False))


def _date_param(params: Mapping[str, Any], name: str) -> dt.date | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ExportValidationError(
            f"params.{name}", f"{value!r} is not a YYYY-MM-DD date"
        ) from None


@dataclass(frozen=True)
class ExportSlice:
    """One partition day of one export: ``[start, end)`` in UTC, and the partition date."""

    day: dt.date
    start: dt.datetime
    end: dt.datetime
    snapshot: bool = False
    extracted_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("day", "start", "end", "extracted_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportSlice:
        extracted = data.get("extracted_at")
        return cls(
            day=dt.date.fromisoformat(data["day"]),
            start=dt.datetime.fromisoformat(data["start"]),
            end=dt.datetime.fromisoformat(data["end"]),
            snapshot=bool(data.get("snapshot", False)),
            extracted_at=dt.datetime.fromisoformat(extracted) if extracted else None,
        )


def iso_ms(value: dt.datetime) -> str:
    """``2026-11-20T00:00:00.000Z``: UTC, milliseconds, ``Z`` (how vendor filters write it)."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """``[day 00:00, day+1 00:00)`` in ``tz``, as UTC datetimes (DST-safe)."""
    start = dt.datetime.combine(day, dt.time(), tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def days_of(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> list[dt.date]:
    """Calendar days (in ``tz``) that ``[start, end)`` overlaps."""
    first = start.astimezone(tz).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def last_complete_day(now: dt.datetime, tz: ZoneInfo) -> dt.date:
    return now.astimezone(tz).date() - dt.timedelta(days=1)


@dataclass(frozen=True)
class SlicePolicy:
    """What of a registry entry the planner needs (kept small for pure tests)."""

    name: str
    snapshot: bool
    timezone: str
    snapshot_grace: dt.timedelta


def plan_days(
    request: RunRequest,
    interval: tuple[dt.datetime, dt.datetime] | None,
    tz: ZoneInfo,
    now: dt.datetime,
) -> list[dt.date]:
    """The partition days a run plans (oldest first; a snapshot takes the last): the
    trigger form's range, else the data interval's days in ``tz``, else (a manual run
    without a logical date) the last complete day."""
    if request.range_start and request.range_end:
        return [
            request.range_start + dt.timedelta(days=i)
            for i in range((request.range_end - request.range_start).days + 1)
        ]
    if interval is not None:
        return days_of(interval[0], interval[1], tz)
    return [last_complete_day(now, tz)]


def plan_slices(
    policy: SlicePolicy,
    request: RunRequest,
    interval: tuple[dt.datetime, dt.datetime] | None,
    now: dt.datetime,
) -> list[ExportSlice]:
    """The slices this run exports for one registry entry; NothingToExport says why not."""
    if request.exports and policy.name not in request.exports:
        raise NothingToExport(f"{policy.name} was not selected in this run's exports")
    tz = ZoneInfo(policy.timezone)
    days = plan_days(request, interval, tz, now)
    if policy.snapshot:
        return [_snapshot_slice(policy, days[-1], tz, now)]
    slices = []
    for day in days:
        start, end = day_bounds(day, tz)
        if interval is not None and not request.range_start:
            start, end = max(start, interval[0]), min(end, interval[1])
        slices.append(ExportSlice(day, start, end))
    return slices


def _snapshot_slice(
    policy: SlicePolicy, day: dt.date, tz: ZoneInfo, now: dt.datetime
) -> ExportSlice:
    start, end = day_bounds(day, tz)
    age = now - end
    if age > policy.snapshot_grace:
        raise NothingToExport(
            f"{policy.name} is a snapshot of the vendor's current state and cannot be taken "
            f"for {day} (that interval ended {_human(age)} ago, more than the "
            f"{_human(policy.snapshot_grace)} snapshot_grace): skipped so that today's state "
            "is never labelled as history"
        )
    return ExportSlice(day, start, end, snapshot=True, extracted_at=now.astimezone(dt.UTC))


def _human(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"
