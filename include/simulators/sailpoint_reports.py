"""The simulator's own reading of SailPoint's report types and their arguments.

Written from the vendor's OpenAPI spec (``sailpoint-oss/api-specs``, ``idn/sailpoint-api.v3.yaml``:
``ReportDetails`` and its per-type argument schemas) and VENDOR_APIS.md section 3, with no
code shared with the pipeline's client.

DOC:

* seven ``reportType`` values; required arguments: ACCOUNTS ``application`` and
  ``sourceName`` (strings), IDENTITIES_DETAILS ``correlatedOnly`` (boolean),
  IDENTITY_PROFILE_IDENTITY_ERROR ``authoritativeSource`` (string), SEARCH_EXPORT ``query``;
  optional: IDENTITIES ``correlatedOnly`` (boolean), ORPHAN_IDENTITIES and
  UNCORRELATED_ACCOUNTS ``selectedFormats`` (array of exactly ``CSV`` / ``PDF``),
  SEARCH_EXPORT ``indices`` (array of the search index names), ``columns`` (a string),
  ``sort`` (array of strings);
* the argument schemas do not forbid extra keys: unknown keys are accepted and ignored
  (``defaultS3Bucket`` / ``s3Bucket`` were removed from the spec in June 2024 and are such
  keys now);
* ``availableFormats`` is the ``selectedFormats`` argument, CSV and PDF when the report has
  none; the download ``fileFormat`` is ``csv`` or ``pdf``;
* SEARCH_EXPORT's file is a zip of CSVs.

CHOICE: an empty ``selectedFormats`` counts as none given (CSV and PDF); a repeated format
counts once; ``query`` must be a non-empty string; a SEARCH_EXPORT download asked for in
``pdf`` is refused (its file is a zip of CSVs whatever ``availableFormats`` says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FORMAT_WORDS: tuple[str, ...] = ("CSV", "PDF")  # DOC: selectedFormats / availableFormats items
DOWNLOAD_FORMATS: tuple[str, ...] = ("csv", "pdf")  # DOC: the fileFormat query values
INDEX_NAMES: tuple[str, ...] = (
    "accessprofiles",
    "accountactivities",
    "entitlements",
    "events",
    "identities",
    "roles",
    "*",
)
"""DOC: the search ``Index`` enum SEARCH_EXPORT's ``indices`` items come from."""
TASK_KINDS: tuple[str, ...] = ("QUARTZ", "QPOC", "MENTOS", "QUEUED_TASK")  # DOC: type enum


class ArgumentError(ValueError):
    """A report run the simulator answers 400: ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


Check = Callable[[str, Any], None]


def _string(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(field, f"{value!r} is not a non-empty string")


def _boolean(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ArgumentError(field, f"{value!r} is not a boolean")


def _array_of(allowed: tuple[str, ...] | None) -> Check:
    def check(field: str, value: Any) -> None:
        if not isinstance(value, list):
            raise ArgumentError(field, f"expected an array, got {type(value).__name__}")
        for i, item in enumerate(value):
            if not isinstance(item, str) or (allowed is not None and item not in allowed):
                wanted = f"one of {', '.join(allowed)}" if allowed else "a string"
                raise ArgumentError(f"{field}[{i}]", f"{item!r} is not {wanted}")

    return check


@dataclass(frozen=True)
class SimReport:
    """One report type as the spec gives it: typed arguments, the required ones."""

    name: str
    checks: Mapping[str, Check]
    required: tuple[str, ...] = ()
    zip_of_csvs: bool = False

    def check(self, arguments: Mapping[str, Any]) -> None:
        """DOC: required arguments present, known ones of their type; others ignored."""
        for name in self.required:
            if name not in arguments:
                raise ArgumentError(f"arguments.{name}", f"is required for {self.name}")
        for name, check in self.checks.items():
            if name in arguments:
                check(f"arguments.{name}", arguments[name])

    def formats(self, arguments: Mapping[str, Any]) -> tuple[str, ...]:
        """DOC: ``availableFormats`` (CSV, PDF unless ``selectedFormats`` narrows them)."""
        chosen = arguments.get("selectedFormats") if "selectedFormats" in self.checks else None
        if not chosen:
            return FORMAT_WORDS
        return tuple(word for word in FORMAT_WORDS if word in chosen)


_SELECTED = {"selectedFormats": _array_of(FORMAT_WORDS)}

SIM_REPORTS: Mapping[str, SimReport] = {
    report.name: report
    for report in (
        SimReport(
            "ACCOUNTS",
            {"application": _string, "sourceName": _string},
            required=("application", "sourceName"),
        ),
        SimReport("IDENTITIES_DETAILS", {"correlatedOnly": _boolean}, required=("correlatedOnly",)),
        SimReport("IDENTITIES", {"correlatedOnly": _boolean}),
        SimReport(
            "IDENTITY_PROFILE_IDENTITY_ERROR",
            {"authoritativeSource": _string},
            required=("authoritativeSource",),
        ),
        SimReport("ORPHAN_IDENTITIES", _SELECTED),
        SimReport("UNCORRELATED_ACCOUNTS", _SELECTED),
        SimReport(
            "SEARCH_EXPORT",
            {
                "query": _string,
                "indices": _array_of(INDEX_NAMES),
                "columns": _string,
                "sort": _array_of(None),
            },
            required=("query",),
            zip_of_csvs=True,
        ),
    )
}
"""DOC: the seven report types of ``ReportDetails.reportType`` and their argument schemas."""


def find_report(name: Any) -> SimReport:
    """The report type called ``name``; anything else is an :class:`ArgumentError`."""
    if not isinstance(name, str) or name not in SIM_REPORTS:
        raise ArgumentError("reportType", f"{name!r} is not one of {', '.join(SIM_REPORTS)}")
    return SIM_REPORTS[name]


def checked_run(body: Any) -> tuple[SimReport, dict[str, Any]]:
    """A ``ReportDetails`` body checked: its report type and its arguments (a copy)."""
    if not isinstance(body, dict):
        raise ArgumentError("body", "must be a ReportDetails object")
    report = find_report(body.get("reportType"))
    arguments = body.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ArgumentError("arguments", f"expected an object, got {type(arguments).__name__}")
    report.check(arguments)
    return report, dict(arguments)


def other_arguments(report: SimReport, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Valid arguments of ``report`` unlike ``arguments`` (someone else's run of the type).

    Every typed argument but ``columns`` and ``sort`` gets another value: a boolean the
    opposite, a string another team's, ``selectedFormats`` and ``indices`` another list.
    """
    theirs: dict[str, Any] = {}
    for name, check in report.checks.items():
        ours = arguments.get(name)
        if check is _boolean:
            theirs[name] = not ours
        elif check is _string and name != "columns":
            value = f"another team's {name}"
            theirs[name] = value if ours != value else f"a third team's {name}"
        elif name == "selectedFormats":
            theirs[name] = ["PDF"] if ours == ["CSV"] else ["CSV"]
        elif name == "indices":
            theirs[name] = ["roles"] if ours == ["accessprofiles"] else ["accessprofiles"]
    report.check(theirs)
    return theirs


def download_format(report: SimReport, arguments: Mapping[str, Any], value: Any) -> str:
    """DOC: ``fileFormat`` is ``csv`` or ``pdf`` and one of the run's ``availableFormats``."""
    if value not in DOWNLOAD_FORMATS:
        raise ArgumentError("fileFormat", f"{value!r} is not one of csv, pdf")
    if value.upper() not in report.formats(arguments):
        raise ArgumentError("fileFormat", f"{value!r} is not an available format of this run")
    if report.zip_of_csvs and value != "csv":
        raise ArgumentError("fileFormat", f"{report.name} files are zips of CSVs: ask for csv")
    return str(value)
