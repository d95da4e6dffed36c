"""The simulators' notion of today: every generated timestamp is relative to it.

One setting, ``SIM_TODAY`` (``YYYY-MM-DD``), read when this module is first imported;
unset, it is today's UTC date. Generated vendor data ends at the coming midnight
(:data:`DATA_ANCHOR`), so a nightly export of "yesterday" always finds rows, and the
same seed gives the same bytes for the same ``SIM_TODAY`` on any day it runs.

The test suite and the local stack set ``SIM_TODAY`` once, before any simulator
starts, and compute every day they need from :func:`today`; moving it (for example a
year ahead) moves the simulators' whole world and the tests' expectations together.
"""

from __future__ import annotations

import datetime as dt
import os

TODAY_ENV = "SIM_TODAY"


def _read_today() -> dt.date:
    value = os.environ.get(TODAY_ENV, "").strip()
    if not value:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{TODAY_ENV}={value!r} is not a YYYY-MM-DD date") from None


TODAY: dt.date = _read_today()
#: The coming midnight (UTC) of :data:`TODAY`: generated data lies before it.
DATA_ANCHOR: dt.datetime = dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(), dt.UTC)


def today() -> dt.date:
    return TODAY


def days_ago(days: int) -> dt.date:
    """The day ``days`` before :func:`today` (1 = yesterday)."""
    return TODAY - dt.timedelta(days=days)


def iso_ms(moment: dt.datetime) -> str:
    """``2026-11-20T13:00:00.000Z``: UTC with milliseconds, as the APIs write instants."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(day: dt.date, time: str = "00:00:00.000") -> str:
    """``day`` at ``time`` (UTC), as an API timestamp: ``at(days_ago(1), "13:00:00.000")``."""
    return f"{day.isoformat()}T{time}Z"
