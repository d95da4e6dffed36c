"""Oleria downloads: the context catalogue and the checks a request passes before it is sent.

Documented by Oleria (DOC): the request body ``{"context", "params": {"filterBy",
"sortBy"}}``; every context of the published catalogue sections; the filter matrix
(which ``filterType`` each ``dataType`` allows); the value counts (``between`` two,
``in``/``notIn`` one or more, ``isNull``/``isNotNull`` none, the rest exactly one);
``last`` for timestamps with one duration such as ``7d`` or ``24h``; ``sortType`` is
``asc`` or ``desc``. Oleria answers a request that breaks them with a 400; the client
checks them first so a bad registry entry fails at parse time, naming the field.

Our CHOICES (Oleria does not say):

- context names of the unpublished sections (External Access, Access Requests,
  Reference) are guesses flagged ``published=False``; real names drop in through
  ``extra_contexts`` without code changes;
- a filter object carries exactly the four documented keys; anything else is refused;
- values may be JSON strings or native JSON numbers/booleans; a timestamp without an
  offset is UTC; ``last`` durations are ``<n>m``, ``<n>h``, ``<n>d`` or ``<n>w``
  (n >= 1); ``matches`` takes a Python regular expression; ``between`` wants its lower
  bound first.

Filtering and sorting rows is Oleria's job (and the simulator's): nothing here does it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compliance_exports.core.errors import ExportValidationError

# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class CatalogueSection:
    """One section of Oleria's export catalogue."""

    name: str
    contexts: tuple[str, ...]
    published: bool = True  # False: the names are our CHOICE, Oleria has not published them


CATALOGUE: tuple[CatalogueSection, ...] = (
    CatalogueSection(
        "Access Inventory",
        (
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
    ),
    CatalogueSection(
        "Identity & Employees",
        ("identities", "employees", "employeeAccessInsights", "oleriaUsers"),
    ),
    CatalogueSection("Utilization", ("accountUtilization", "groupUtilizationAccounts")),
    CatalogueSection(
        "Risk & Activity",
        ("risks", "risksV2", "riskMonitoringDetail", "activityAnalysis"),
    ),
    CatalogueSection(
        "Identity Assessments",
        (
            "identityAssessmentRiskDownload",
            "identityAssessmentEntitlementUtilization",
            "identityAssessmentResourceInstanceUtilization",
            "identityAssessmentSimilarGroups",
        ),
    ),
    CatalogueSection("Identity Lifecycle", ("ilmEmployeeEvents", "ilmWorkflowEmployeeEvents")),
    CatalogueSection(
        "External Access", ("externalUsers", "externallySharedAssets"), published=False
    ),
    CatalogueSection("Access Requests", ("accessRequests",), published=False),
    CatalogueSection("Reference", ("applications", "resources"), published=False),
)


def known_contexts(extra_contexts: Iterable[str] = ()) -> frozenset[str]:
    """Every context name the catalogue knows, plus ``extra_contexts``."""
    if isinstance(extra_contexts, str) or not all(
        isinstance(name, str) and name for name in extra_contexts
    ):
        raise ExportValidationError(
            "extra_contexts", f"expected a list of context names, got {extra_contexts!r}"
        )
    names = {context for section in CATALOGUE for context in section.contexts}
    return frozenset(names.union(extra_contexts))


# --------------------------------------------------------------------------- filter matrix

FILTER_TYPES: Mapping[str, tuple[str, ...]] = {
    "string": (
        "eq",
        "ne",
        "in",
        "notIn",
        "contains",
        "notContains",
        "matches",
        "isNull",
        "isNotNull",
    ),
    "number": (
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "in",
        "notIn",
        "isNull",
        "isNotNull",
    ),
    "boolean": ("eq", "ne", "isNull", "isNotNull"),
    "timestamp": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "last", "isNull", "isNotNull"),
    "enum": ("eq", "ne", "in", "notIn", "isNull", "isNotNull"),
}
"""DOC: the filterType each dataType allows, in the vendor's order."""

DATA_TYPES: tuple[str, ...] = tuple(FILTER_TYPES)
SORT_TYPES: tuple[str, ...] = ("asc", "desc")
FILTER_KEYS: tuple[str, ...] = ("dataType", "field", "filterType", "values")
SORT_KEYS: tuple[str, ...] = ("field", "sortType")

_EXACT_VALUE_COUNTS: Mapping[str, int] = {"between": 2, "isNull": 0, "isNotNull": 0}
_AT_LEAST_ONE: frozenset[str] = frozenset({"in", "notIn"})


def value_count_rule(filter_type: str) -> tuple[int, int | None]:
    """``(min, max)`` number of values a filterType takes; ``max`` None means unbounded."""
    if filter_type in _AT_LEAST_ONE:
        return 1, None
    exact = _EXACT_VALUE_COUNTS.get(filter_type, 1)
    return exact, exact


def _describe_count(filter_type: str) -> str:
    low, high = value_count_rule(filter_type)
    if high is None:
        return f"at least {low} value{'s' if low != 1 else ''}"
    if high == 0:
        return "no values"
    return f"exactly {high} value{'s' if high != 1 else ''}"


# --------------------------------------------------------------------------- value parsing

_DURATION = re.compile(r"^([1-9][0-9]*)([mhdw])$")
_DURATION_UNITS: Mapping[str, str] = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """Parse a ``last`` duration such as ``7d``, ``24h``, ``30m`` or ``2w``."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration (a positive whole number followed by m, h, d or w, "
            "e.g. 7d, 24h, 30m)"
        )
    return dt.timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def parse_timestamp(value: Any) -> dt.datetime:
    """Parse an ISO-8601 timestamp (or accept a datetime); no offset means UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 timestamp") from None
    else:
        raise ValueError(f"{value!r} is not an ISO-8601 timestamp")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_number(value: Any) -> float:
    """Parse a finite number given as a JSON number or a numeric string."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def parse_boolean(value: Any) -> bool:
    """Parse ``true``/``false`` (JSON booleans or the strings, any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise ValueError(f"{value!r} is not a boolean (expected true or false)")


def parse_text(value: Any) -> str:
    """Accept a non-empty string (string and enum values)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a non-empty string")
    return value


_VALUE_PARSERS: Mapping[str, Callable[[Any], Any]] = {
    "string": parse_text,
    "number": parse_number,
    "boolean": parse_boolean,
    "timestamp": parse_timestamp,
    "enum": parse_text,
}


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class RowFilter:
    """One validated filterBy entry, with its values parsed for its dataType."""

    data_type: str
    field: str
    filter_type: str
    values: tuple[Any, ...]

    @classmethod
    def from_dict(cls, entry: Any, *, path: str = "params.filterBy[0]") -> RowFilter:
        """Validate one filterBy object; errors name ``path`` and the offending key."""
        _check_object(entry, path, FILTER_KEYS, required=FILTER_KEYS)
        data_type = _check_choice(entry["dataType"], f"{path}.dataType", DATA_TYPES, "dataType")
        field = _check_field(entry["field"], f"{path}.field")
        filter_type = _check_filter_type(entry["filterType"], f"{path}.filterType", data_type)
        raw_values = _check_values(entry["values"], f"{path}.values", filter_type)
        values = tuple(
            _parse_value(value, f"{path}.values[{i}]", data_type, filter_type)
            for i, value in enumerate(raw_values)
        )
        _check_between_order(values, f"{path}.values", filter_type)
        return cls(data_type, field, filter_type, values)


@dataclass(frozen=True)
class RowSort:
    """One validated sortBy entry."""

    field: str
    descending: bool

    @classmethod
    def from_dict(cls, entry: Any, *, path: str = "params.sortBy[0]") -> RowSort:
        """Validate one sortBy object; errors name ``path`` and the offending key."""
        _check_object(entry, path, SORT_KEYS, required=SORT_KEYS)
        field = _check_field(entry["field"], f"{path}.field")
        sort_type = _check_choice(entry["sortType"], f"{path}.sortType", SORT_TYPES, "sortType")
        return cls(field, sort_type == "desc")


def validate_download_request(
    context: str,
    filter_by: Sequence[Mapping[str, Any]],
    sort_by: Sequence[Mapping[str, Any]],
    *,
    extra_contexts: Iterable[str] = (),
) -> None:
    """Check a ``POST /v1/downloads`` request; raise ExportValidationError naming the field."""
    validate_context(context, extra_contexts=extra_contexts)
    parse_filter_by(filter_by)
    parse_sort_by(sort_by)


def validate_context(context: Any, *, extra_contexts: Iterable[str] = ()) -> str:
    """Check that ``context`` is a catalogue (or extra) context name."""
    known = known_contexts(extra_contexts)
    if not isinstance(context, str) or not context:
        raise ExportValidationError("context", f"{context!r} is not a context name")
    if context not in known:
        close = sorted(name for name in known if name.lower() == context.lower())
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ExportValidationError(
            "context",
            f"unknown context {context!r}{hint}; add it through extra_contexts if Oleria "
            "has published it",
        )
    return context


def parse_filter_by(filter_by: Any) -> tuple[RowFilter, ...]:
    """Validate ``params.filterBy`` and return its parsed filters."""
    entries = _check_list(filter_by, "params.filterBy")
    return tuple(
        RowFilter.from_dict(entry, path=f"params.filterBy[{i}]") for i, entry in enumerate(entries)
    )


def parse_sort_by(sort_by: Any) -> tuple[RowSort, ...]:
    """Validate ``params.sortBy`` and return its parsed sort keys."""
    entries = _check_list(sort_by, "params.sortBy")
    return tuple(
        RowSort.from_dict(entry, path=f"params.sortBy[{i}]") for i, entry in enumerate(entries)
    )


def _check_list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ExportValidationError(path, f"expected a list, got {type(value).__name__}")
    return value


def _check_object(
    entry: Any, path: str, allowed: tuple[str, ...], *, required: tuple[str, ...]
) -> None:
    if not isinstance(entry, Mapping):
        raise ExportValidationError(path, f"expected an object, got {type(entry).__name__}")
    for key in entry:
        if key not in allowed:
            raise ExportValidationError(
                f"{path}.{key}", f"unknown key (allowed: {', '.join(allowed)})"
            )
    for key in required:
        if key not in entry:
            raise ExportValidationError(f"{path}.{key}", "is required")


def _check_choice(value: Any, path: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ExportValidationError(
            path, f"{value!r} is not a valid {what} (allowed: {', '.join(allowed)})"
        )
    return str(value)


def _check_field(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ExportValidationError(path, f"{value!r} is not a field name (non-empty string)")
    return value


def _check_filter_type(value: Any, path: str, data_type: str) -> str:
    allowed = FILTER_TYPES[data_type]
    if value not in allowed:
        raise ExportValidationError(
            path,
            f"{value!r} is not allowed for dataType {data_type!r} (allowed: {', '.join(allowed)})",
        )
    return str(value)


def _check_values(values: Any, path: str, filter_type: str) -> Sequence[Any]:
    values = _check_list(values, path)
    low, high = value_count_rule(filter_type)
    if len(values) < low or (high is not None and len(values) > high):
        raise ExportValidationError(
            path, f"{filter_type!r} takes {_describe_count(filter_type)}, got {len(values)}"
        )
    return values


def _parse_value(value: Any, path: str, data_type: str, filter_type: str) -> Any:
    try:
        if filter_type == "last":
            return parse_duration(value)
        parsed = _VALUE_PARSERS[data_type](value)
        if filter_type == "matches":
            return re.compile(parsed)
        return parsed
    except re.error as exc:
        raise ExportValidationError(path, f"{value!r} is not a regular expression: {exc}") from None
    except ValueError as exc:
        raise ExportValidationError(path, f"{exc} (dataType {data_type!r})") from None


def _check_between_order(values: tuple[Any, ...], path: str, filter_type: str) -> None:
    if filter_type == "between" and values[0] > values[1]:
        raise ExportValidationError(
            path, f"'between' needs the lower bound first, got {values[0]} > {values[1]}"
        )
