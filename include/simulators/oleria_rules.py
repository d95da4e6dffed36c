"""Oleria's request rules, as the simulator reads VENDOR_APIS.md section 1.

This module is the simulator's own reading of the vendor's documentation, written
independently of the pipeline's client so that the two can disagree (and a test can
catch it). It turns a ``POST /v1/downloads`` body into a :class:`DownloadQuery` or
raises :class:`Refused` (answered 400 ``{code, message}``).

DOC (VENDOR_APIS.md, "1. Oleria downloads API"):

* the body is ``{"context": str, "params": {"filterBy": [...], "sortBy": [...]}}``;
* the context catalogue's published sections (:data:`PUBLISHED_CONTEXTS`);
* each filter is ``{dataType, field, filterType, values[]}``; which filterType each
  dataType allows (:data:`OPERATORS`); "An operator not allowed for its dataType is a
  400";
* ``between`` takes exactly 2 values, ``in``/``notIn`` 1 or more, ``isNull`` /
  ``isNotNull`` none, every other operator exactly 1;
* ``last`` (timestamps only) takes one duration like ``7d`` or ``24h``;
* sortBy entries are ``{field, sortType: asc|desc}``.

CHOICE (the documentation is silent; switchable where a setting is named):

* names of the unpublished sections (External Access, Access Requests, Reference):
  :data:`UNPUBLISHED_GUESSES`, replaceable through ``unpublished_contexts``;
  ``extra_contexts`` adds names;
* ``last`` units: ``m``, ``h``, ``d``, ``w`` by default (``last_units``), a positive
  whole number before the unit;
* a timestamp without an offset is UTC (``naive_timestamps``; off: refused);
* numbers and booleans may be JSON natives or strings (``"42"``, ``"true"``);
  string and enum values are non-empty strings; ``matches`` takes a Python regular
  expression; ``between`` wants its lower bound first;
* a filter or sort object with keys beyond the documented ones is refused;
* every refusal is 400 with code ``invalid_request`` and a message that starts with
  the path of the offending part (``params.filterBy[1].filterType: ...``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- catalogue

PUBLISHED_CONTEXTS: dict[str, tuple[str, ...]] = {
    "Access Inventory": (
        "accessInventoryIdentitiesV2",
        "accessInventoryEmployeesV2",
        "accessInventoryNhiV2",
        "accessInventoryAccounts",
        "accessInventoryApplicationAccountsV2",
        "accessInventoryApplicationInstancesV2",
        "accessInventoryGroupsV2",
        "accessInventoryRolesV2",
        "accessInventoryResourceInstancesV2",
    ),
    "Identity & Employees": ("identities", "employees", "employeeAccessInsights", "oleriaUsers"),
    "Utilization": ("accountUtilization", "groupUtilizationAccounts"),
    "Risk & Activity": ("risks", "risksV2", "riskMonitoringDetail", "activityAnalysis"),
    "Identity Assessments": (
        "identityAssessmentRiskDownload",
        "identityAssessmentEntitlementUtilization",
        "identityAssessmentResourceInstanceUtilization",
        "identityAssessmentSimilarGroups",
    ),
    "Identity Lifecycle": ("ilmEmployeeEvents", "ilmWorkflowEmployeeEvents"),
}
"""DOC: the published sections of the export catalogue and their context names."""

UNPUBLISHED_GUESSES: dict[str, tuple[str, ...]] = {
    "External Access": ("externalUsers", "externallySharedAssets"),
    "Access Requests": ("accessRequests",),
    "Reference": ("applications", "resources"),
}
"""CHOICE: names for the sections whose context names Oleria has not published."""


def default_unpublished_contexts() -> list[str]:
    """CHOICE: the guessed names the simulator answers by default (a settings default)."""
    return [name for names in UNPUBLISHED_GUESSES.values() for name in names]


# --------------------------------------------------------------------------- operators


def table_cell(text: str) -> frozenset[str]:
    """The operators of one row of the doc's table, written as the doc writes them."""
    return frozenset(text.split(" "))


OPERATORS: dict[str, frozenset[str]] = {
    "string": table_cell("eq ne in notIn contains notContains matches isNull isNotNull"),
    "number": table_cell("eq ne gt gte lt lte between in notIn isNull isNotNull"),
    "boolean": table_cell("eq ne isNull isNotNull"),
    "timestamp": table_cell("eq ne gt gte lt lte between last isNull isNotNull"),
    "enum": table_cell("eq ne in notIn isNull isNotNull"),
}
"""DOC: the dataType x filterType table, one row per dataType."""

SORT_TYPES = frozenset({"asc", "desc"})  # DOC: sortType asc|desc
FILTER_KEYS = frozenset({"dataType", "field", "filterType", "values"})  # DOC
SORT_KEYS = frozenset({"field", "sortType"})  # DOC


def value_count(filter_type: str) -> tuple[int, int | None]:
    """DOC: the (least, most) number of values ``filter_type`` takes; None is unbounded."""
    if filter_type == "between":
        return 2, 2
    if filter_type in {"in", "notIn"}:
        return 1, None
    if filter_type in {"isNull", "isNotNull"}:
        return 0, 0
    return 1, 1


def count_wording(filter_type: str) -> str:
    least, most = value_count(filter_type)
    if most is None:
        return f"{least} or more values"
    if most == 0:
        return "no values"
    return f"exactly {most} value" + ("s" if most > 1 else "")


# --------------------------------------------------------------------------- refusals


class Refused(Exception):
    """A request the simulator answers 400 ``{code, message}`` (DOC: flat error body)."""

    def __init__(self, where: str, problem: str, code: str = "invalid_request") -> None:
        super().__init__(f"{where}: {problem}")
        self.code = code
        self.message = f"{where}: {problem}"


# --------------------------------------------------------------------------- the query


@dataclass(frozen=True)
class Condition:
    """One filterBy entry with its operands read for its dataType."""

    field: str
    data_type: str
    operator: str
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class SortKey:
    """One sortBy entry."""

    field: str
    descending: bool


@dataclass(frozen=True)
class DownloadQuery:
    """What a valid ``POST /v1/downloads`` body asks for."""

    context: str
    conditions: tuple[Condition, ...]
    sort_keys: tuple[SortKey, ...]
    filter_by: tuple[Mapping[str, Any], ...]
    sort_by: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Dialect:
    """The CHOICE settings that change how a request is read."""

    contexts: frozenset[str]
    last_units: str = "mhdw"
    naive_timestamps: bool = True


def read_download_request(body: Any, dialect: Dialect) -> DownloadQuery:
    """Check a ``POST /v1/downloads`` body against the rules; raise :class:`Refused`."""
    if not isinstance(body, dict):
        raise Refused("body", "expected a JSON object")
    context = read_context(body.get("context"), dialect.contexts)
    params = body.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise Refused("params", "expected an object")
    filter_by = as_list(params.get("filterBy"), "params.filterBy")
    sort_by = as_list(params.get("sortBy"), "params.sortBy")
    conditions = tuple(
        read_condition(entry, f"params.filterBy[{i}]", dialect) for i, entry in enumerate(filter_by)
    )
    keys = tuple(read_sort_key(entry, f"params.sortBy[{i}]") for i, entry in enumerate(sort_by))
    return DownloadQuery(context, conditions, keys, tuple(filter_by), tuple(sort_by))


def read_context(value: Any, contexts: frozenset[str]) -> str:
    if not isinstance(value, str) or not value:
        raise Refused("context", f"{value!r} is not a context name")
    if value not in contexts:
        raise Refused("context", f"unknown context {value!r}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """A JSON array (missing or null counts as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refused(where, f"expected a list, got {type(value).__name__}")
    return value


def check_keys(entry: Any, where: str, documented: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(entry, dict):
        raise Refused(where, f"expected an object, got {type(entry).__name__}")
    extra = sorted(set(entry) - documented)
    if extra:
        raise Refused(
            f"{where}.{extra[0]}", f"unknown key (known: {', '.join(sorted(documented))})"
        )
    missing = sorted(documented - set(entry))
    if missing:
        raise Refused(f"{where}.{missing[0]}", "is required")
    return entry


def read_field(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused(where, f"{value!r} is not a field name")
    return value


def read_condition(entry: Any, where: str, dialect: Dialect) -> Condition:
    """One filterBy entry: dataType, then filterType, then the values (first fault wins)."""
    entry = check_keys(entry, where, FILTER_KEYS)
    data_type = entry["dataType"]
    if data_type not in OPERATORS:
        raise Refused(f"{where}.dataType", f"{data_type!r} is not a dataType")
    field = read_field(entry["field"], f"{where}.field")
    operator = entry["filterType"]
    if operator not in OPERATORS[data_type]:
        allowed = ", ".join(sorted(OPERATORS[data_type]))
        raise Refused(
            f"{where}.filterType",
            f"{operator!r} is not allowed for dataType {data_type!r} (allowed: {allowed})",
        )
    values = as_list(entry["values"], f"{where}.values")
    least, most = value_count(operator)
    if len(values) < least or (most is not None and len(values) > most):
        raise Refused(
            f"{where}.values", f"{operator!r} takes {count_wording(operator)}, got {len(values)}"
        )
    operands = tuple(
        read_operand(value, f"{where}.values[{i}]", data_type, operator, dialect)
        for i, value in enumerate(values)
    )
    if operator == "between" and operands[0] > operands[1]:
        raise Refused(f"{where}.values", "'between' wants the lower bound first")
    return Condition(field, data_type, operator, operands)


def read_sort_key(entry: Any, where: str) -> SortKey:
    entry = check_keys(entry, where, SORT_KEYS)
    field = read_field(entry["field"], f"{where}.field")
    if entry["sortType"] not in SORT_TYPES:
        raise Refused(f"{where}.sortType", f"{entry['sortType']!r} is not asc or desc")
    return SortKey(field, entry["sortType"] == "desc")


# --------------------------------------------------------------------------- operands


def read_operand(value: Any, where: str, data_type: str, operator: str, dialect: Dialect) -> Any:
    """``value`` as the operand ``operator`` compares with (``where`` names it on refusal)."""
    try:
        if operator == "last":
            return read_duration(value, dialect.last_units)
        if operator == "matches":
            return read_pattern(value)
        if data_type == "timestamp":
            return read_instant(value, naive_is_utc=dialect.naive_timestamps)
        return READERS[data_type](value)
    except ValueError as exc:
        raise Refused(where, f"{exc} (dataType {data_type!r})") from None


def read_text(value: Any) -> str:
    """CHOICE: string and enum values are non-empty JSON strings."""
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"{value!r} is not a non-empty string")


def read_number(value: Any) -> float:
    """CHOICE: a finite JSON number, or a string holding one; never a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def read_boolean(value: Any) -> bool:
    """CHOICE: a JSON boolean, or the string true/false in any case."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(f"{value!r} is not a boolean")


def read_instant(value: Any, *, naive_is_utc: bool) -> dt.datetime:
    """DOC: ISO-8601 UTC. CHOICE: without an offset it is UTC (or refused)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an ISO-8601 timestamp")
    try:
        instant = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 timestamp") from None
    if instant.tzinfo is not None:
        return instant
    if not naive_is_utc:
        raise ValueError(f"{value!r} has no UTC offset (write Z or +00:00)")
    return instant.replace(tzinfo=dt.UTC)


def read_pattern(value: Any) -> re.Pattern[str]:
    """CHOICE: ``matches`` takes a Python regular expression, searched anywhere."""
    text = read_text(value)
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"{text!r} is not a regular expression ({exc})") from None


UNIT_SECONDS: dict[str, int] = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def read_duration(value: Any, units: str) -> dt.timedelta:
    """DOC: one duration like ``7d`` or ``24h``. CHOICE: which units (``units``)."""
    match = re.fullmatch(r"([1-9][0-9]*)([a-z])", value) if isinstance(value, str) else None
    if match is None or match.group(2) not in units or match.group(2) not in UNIT_SECONDS:
        raise ValueError(
            f"{value!r} is not a duration (a whole number and one of {', '.join(units)})"
        )
    return dt.timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


READERS: dict[str, Callable[[Any], Any]] = {
    "string": read_text,
    "enum": read_text,
    "number": read_number,
    "boolean": read_boolean,
}


def checked_fields(query: DownloadQuery) -> Sequence[tuple[str, str]]:
    """(path, field) of every field the query names, for the strict-fields CHOICE."""
    named = [(f"params.filterBy[{i}].field", c.field) for i, c in enumerate(query.conditions)]
    named += [(f"params.sortBy[{i}].field", k.field) for i, k in enumerate(query.sort_keys)]
    return named
