"""Applying an Oleria download's filters and sort order to the simulator's rows.

DOC (VENDOR_APIS.md, "1. Oleria downloads API"): filters are AND-combined; each
operator means what its name says (``between`` inclusive of both bounds, ``in`` /
``notIn`` membership, ``last`` the recent past); sortBy keys apply in order, the
first most significant.

CHOICE (the documentation is silent):

* the data's "now" for ``last`` is :func:`data_now`: the wall clock shifted by the
  offset of ``clock.DATA_ANCHOR`` from the real coming midnight (with ``SIM_TODAY``
  unset that is the wall clock; with ``SIM_TODAY`` a year ahead, a year ahead too), read
  once when the download is created; ``last 7d`` keeps ``now - 7d <= t <= now``;
* a null (or missing) field satisfies ``isNull`` and nothing else, ``ne`` and ``notIn``
  included (SQL's three-valued logic);
* ``isNotNull`` is true for every non-null value, an empty string included;
* string and enum comparisons are case-sensitive except ``contains`` /
  ``notContains``, which ignore case; a non-string cell compares as its CSV text;
* a cell that cannot be read as the filter's dataType matches no operator but
  ``isNotNull``;
* sorting is stable; nulls sort last ascending and first descending (PostgreSQL's
  default); strings sort by code point.
"""

from __future__ import annotations

import datetime as dt
import operator as op
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from include.simulators.clock import DATA_ANCHOR
from include.simulators.data import render_value
from include.simulators.oleria_rules import Condition, SortKey

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


def data_now(wall: dt.datetime | None = None) -> dt.datetime:
    """CHOICE: the simulated world's now, DATA_ANCHOR's offset applied to the wall clock."""
    wall = wall if wall is not None else dt.datetime.now(dt.UTC)
    real_midnight = dt.datetime.combine(wall.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return wall + (DATA_ANCHOR - real_midnight)


# --------------------------------------------------------------------------- cells


def as_number(cell: Any) -> float | None:
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int | float):
        return float(cell)
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None


def as_boolean(cell: Any) -> bool | None:
    if isinstance(cell, bool):
        return cell
    text = str(cell).lower()
    return {"true": True, "false": False}.get(text)


def as_instant(cell: Any) -> dt.datetime | None:
    if isinstance(cell, dt.datetime):
        return cell if cell.tzinfo else cell.replace(tzinfo=dt.UTC)
    try:
        instant = dt.datetime.fromisoformat(str(cell))
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


CELL_READERS: dict[str, Callable[[Any], Any]] = {
    "string": render_value,
    "enum": render_value,
    "number": as_number,
    "boolean": as_boolean,
    "timestamp": as_instant,
}


# --------------------------------------------------------------------------- operators

Test = Callable[[Any, tuple[Any, ...]], bool]

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": op.eq,
    "ne": op.ne,
    "gt": op.gt,
    "gte": op.ge,
    "lt": op.lt,
    "lte": op.le,
}


def operator_test(name: str, now: dt.datetime) -> Test:
    """How operator ``name`` tests a read cell against its operands."""
    if name in COMPARISONS:
        compare = COMPARISONS[name]
        return lambda cell, operands: compare(cell, operands[0])
    tests: dict[str, Test] = {
        "between": lambda cell, o: o[0] <= cell <= o[1],
        "in": lambda cell, o: cell in o,
        "notIn": lambda cell, o: cell not in o,
        "contains": lambda cell, o: o[0].casefold() in cell.casefold(),
        "notContains": lambda cell, o: o[0].casefold() not in cell.casefold(),
        "matches": lambda cell, o: o[0].search(cell) is not None,
        "last": lambda cell, o: now - o[0] <= cell <= now,
    }
    return tests[name]


def condition_predicate(condition: Condition, now: dt.datetime) -> Predicate:
    """A row test for one condition (``now`` anchors ``last``)."""
    field = condition.field
    if condition.operator == "isNull":
        return lambda row: row.get(field) is None
    if condition.operator == "isNotNull":
        return lambda row: row.get(field) is not None
    read = CELL_READERS[condition.data_type]
    test, operands = operator_test(condition.operator, now), condition.operands

    def holds(row: Row) -> bool:
        cell = row.get(field)
        if cell is None:
            return False
        value = read(cell)
        return value is not None and test(value, operands)

    return holds


def where(conditions: Sequence[Condition], now: dt.datetime) -> Predicate | None:
    """DOC: the AND of every condition (None when there are none: every row passes)."""
    if not conditions:
        return None
    predicates = [condition_predicate(condition, now) for condition in conditions]
    return lambda row: all(predicate(row) for predicate in predicates)


# --------------------------------------------------------------------------- sorting


def sort_value(cell: Any) -> tuple[bool, int, Any]:
    """(is null, kind, value): orders one column's cells, never raising on a mix."""
    if cell is None:
        return True, 0, 0
    if isinstance(cell, bool):
        return False, 0, int(cell)
    if isinstance(cell, int | float):
        return False, 1, cell
    if isinstance(cell, dt.datetime):
        return False, 2, as_instant(cell)
    return False, 3, str(cell)


def sort_records(records: Iterable[Row], keys: Sequence[SortKey]) -> list[Row]:
    """DOC: first key most significant. CHOICE: stable, nulls last asc / first desc."""
    ordered = list(records)
    for key in reversed(keys):
        field = key.field
        # reverse=True keeps equal items in order, and puts the nulls (True) first.
        ordered.sort(key=lambda row: sort_value(row.get(field)), reverse=key.descending)
    return ordered
