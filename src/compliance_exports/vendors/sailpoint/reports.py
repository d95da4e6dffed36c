"""SailPoint Identity Security Cloud reports: the report types, their arguments, file formats.

Documented by SailPoint (DOC, OpenAPI spec ``sailpoint-oss/api-specs`` and the SDK
models ``*ReportArguments``): the seven ``reportType`` values and their arguments -
ACCOUNTS (``application``, ``sourceName`` required), IDENTITIES_DETAILS
(``correlatedOnly`` required), IDENTITIES (``correlatedOnly``),
IDENTITY_PROFILE_IDENTITY_ERROR (``authoritativeSource`` required), ORPHAN_IDENTITIES and
UNCORRELATED_ACCOUNTS (``selectedFormats``: exactly ``CSV`` and/or ``PDF``, case-exact;
both when absent), SEARCH_EXPORT (``query`` required, ``indices`` from the search Index
enum, ``columns`` a comma-separated string, ``sort`` field names with an optional +/-
prefix); the download ``fileFormat`` csv|pdf. ``defaultS3Bucket`` / ``s3Bucket`` were
removed from every report type in June 2024: they are not arguments any more.

Our rules, stricter than the vendor on purpose:

* An argument key not in the table is refused before submitting. The vendor's argument
  schemas do not forbid extra keys, so SailPoint accepts and *ignores* an unknown key
  (DOC); in a registry entry such a key is almost always a typo that would silently do
  nothing, so we name it instead. The table is data: a new argument is one line.
* ``selectedFormats`` values are matched case-exactly (``"pdf"`` is refused, naming the
  allowed ``CSV``, ``PDF``; never upper-cased for the vendor: the vendor answers 400 to
  it, and a registry typo should be named). The list must not be empty or repeat a format.
* ``indices`` values are matched case-exactly too (the Index enum is lower case).
* SEARCH_EXPORT offers only csv (its zip); asking for a ``fileFormat`` the run does not
  produce is an error. ``fileFormat`` itself is our download option, not a vendor
  argument: it is accepted in any case and always sent in lower case (``csv``/``pdf``,
  the documented values).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from compliance_exports.core.errors import ExportValidationError

FILE_FORMATS: tuple[str, ...] = ("csv", "pdf")
SELECTABLE_FORMATS: tuple[str, ...] = ("CSV", "PDF")
SEARCH_INDICES: tuple[str, ...] = (
    "accessprofiles",
    "accountactivities",
    "entitlements",
    "events",
    "identities",
    "roles",
    "*",
)


# --------------------------------------------------------------------------- argument kinds


def _check_text(path: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ExportValidationError(path, f"{value!r} is not a non-empty string")


def _check_boolean(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ExportValidationError(path, f"{value!r} is not a boolean (true or false)")


def _check_list(path: str, value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ExportValidationError(path, f"expected a list, got {type(value).__name__}")
    return list(value)


def _check_choices(path: str, value: Any, allowed: tuple[str, ...]) -> None:
    """A non-empty list of distinct values from ``allowed``, matched case-exactly."""
    items = _check_list(path, value)
    if not items:
        raise ExportValidationError(path, f"must name at least one of {', '.join(allowed)}")
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item not in allowed:
            problem = f"{item!r} is not allowed (allowed, case-exact: {', '.join(allowed)})"
            other_case = [a for a in allowed if isinstance(item, str) and a.lower() == item.lower()]
            if other_case:
                problem += f"; did you mean {other_case[0]!r}?"
            raise ExportValidationError(f"{path}[{i}]", problem)
        if item in seen:
            raise ExportValidationError(f"{path}[{i}]", f"{item!r} is listed twice")
        seen.add(item)


def _check_formats(path: str, value: Any) -> None:
    _check_choices(path, value, SELECTABLE_FORMATS)


def _check_indices(path: str, value: Any) -> None:
    _check_choices(path, value, SEARCH_INDICES)


_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SORT_FIELD = re.compile(r"^[+-]?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _check_columns(path: str, value: Any) -> None:
    _check_text(path, value)
    for i, column in enumerate(value.split(",")):
        if not _COLUMN.match(column.strip()):
            raise ExportValidationError(
                path, f"column {i + 1} {column.strip()!r} is not an attribute name"
            )


def _check_sort(path: str, value: Any) -> None:
    for i, item in enumerate(_check_list(path, value)):
        if not isinstance(item, str) or not _SORT_FIELD.match(item):
            raise ExportValidationError(
                f"{path}[{i}]", f"{item!r} is not a sort field (a name with an optional + or -)"
            )


ArgumentCheck = Callable[[str, Any], None]


@dataclass(frozen=True)
class Argument:
    """One report argument: its name, how its value is checked, whether it is required."""

    name: str
    kind: str  # text, boolean, formats, indices, columns, sort
    required: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"argument {self.name!r}: unknown kind {self.kind!r}")

    def check(self, value: Any) -> None:
        _KINDS[self.kind](f"arguments.{self.name}", value)


_KINDS: Mapping[str, ArgumentCheck] = {
    "text": _check_text,
    "boolean": _check_boolean,
    "formats": _check_formats,
    "indices": _check_indices,
    "columns": _check_columns,
    "sort": _check_sort,
}


@dataclass(frozen=True)
class ReportType:
    """One ``reportType``: its arguments and the download formats it offers."""

    name: str
    arguments: tuple[Argument, ...]
    file_formats: tuple[str, ...] = FILE_FORMATS

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments if a.required)

    @property
    def argument_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arguments)


_SELECTED_FORMATS = Argument("selectedFormats", "formats")

REPORT_TYPES: Mapping[str, ReportType] = {
    report.name: report
    for report in (
        ReportType(
            "ACCOUNTS",
            (
                Argument("application", "text", required=True),
                Argument("sourceName", "text", required=True),
            ),
        ),
        ReportType("IDENTITIES_DETAILS", (Argument("correlatedOnly", "boolean", required=True),)),
        ReportType("IDENTITIES", (Argument("correlatedOnly", "boolean"),)),
        ReportType(
            "IDENTITY_PROFILE_IDENTITY_ERROR",
            (Argument("authoritativeSource", "text", required=True),),
        ),
        ReportType("ORPHAN_IDENTITIES", (_SELECTED_FORMATS,)),
        ReportType("UNCORRELATED_ACCOUNTS", (_SELECTED_FORMATS,)),
        ReportType(
            "SEARCH_EXPORT",
            (
                Argument("query", "text", required=True),
                Argument("indices", "indices"),
                Argument("columns", "columns"),
                Argument("sort", "sort"),
            ),
            file_formats=("csv",),  # its file is a zip of CSVs
        ),
    )
}
"""DOC: the seven report types and their arguments."""


# --------------------------------------------------------------------------- validation


def report_type(name: Any) -> ReportType:
    """The ReportType called ``name``; an unknown name is an ExportValidationError."""
    return _find_report_type(name)


def _find_report_type(name: Any) -> ReportType:
    if not isinstance(name, str) or name not in REPORT_TYPES:
        raise ExportValidationError(
            "reportType", f"{name!r} is not a report type (allowed: {', '.join(REPORT_TYPES)})"
        )
    return REPORT_TYPES[name]


def validate_report(report_type: Any, arguments: Any, file_format: Any) -> None:
    """Check a report run (``reportType``, ``arguments``) and its download ``fileFormat``."""
    report = _find_report_type(report_type)
    validate_arguments(report, arguments)
    check_file_format(report, arguments, file_format)


def validate_arguments(report: ReportType, arguments: Any) -> None:
    """Check ``arguments`` against the report's table: names, required ones, value kinds.

    An unknown key is refused: our deliberate rule, stricter than SailPoint, which accepts
    and ignores keys its schemas do not name (an unknown key is almost always a typo).
    """
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ExportValidationError(
            "arguments", f"expected an object, got {type(arguments).__name__}"
        )
    for name in arguments:
        if name not in report.argument_names:
            # Our rule, not the vendor's: SailPoint would accept and ignore the key.
            allowed = ", ".join(report.argument_names) or "none"
            raise ExportValidationError(
                f"arguments.{name}",
                f"not an argument of {report.name} (allowed: {allowed}); "
                "SailPoint would silently ignore it, so it is refused as a likely typo",
            )
    for argument in report.arguments:
        if argument.name in arguments:
            argument.check(arguments[argument.name])
        elif argument.required:
            raise ExportValidationError(
                f"arguments.{argument.name}", f"is required for {report.name}"
            )


def available_formats(report: ReportType, arguments: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The download formats (lower case) this run will offer (``availableFormats``)."""
    selected = (arguments or {}).get("selectedFormats")
    if selected is None:
        return report.file_formats
    chosen = {str(f).lower() for f in selected}
    return tuple(f for f in report.file_formats if f in chosen)


def check_file_format(report: ReportType, arguments: Any, file_format: Any) -> str:
    """Check ``fileFormat`` (csv|pdf) is one this run produces; return it in lower case."""
    if not isinstance(file_format, str) or file_format.lower() not in FILE_FORMATS:
        raise ExportValidationError(
            "fileFormat",
            f"{file_format!r} is not a file format (allowed: {', '.join(FILE_FORMATS)})",
        )
    offered = available_formats(report, arguments if isinstance(arguments, Mapping) else None)
    if file_format.lower() not in offered:
        raise ExportValidationError(
            "fileFormat",
            f"{file_format!r} is not produced by this {report.name} run "
            f"(it produces: {', '.join(offered)})",
        )
    return file_format.lower()
