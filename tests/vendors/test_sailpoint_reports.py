from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.vendors.sailpoint.reports import (
    REPORT_TYPES,
    SEARCH_INDICES,
    Argument,
    available_formats,
    report_type,
    validate_report,
)

# A minimal valid argument set per report type.
MINIMAL: dict[str, dict[str, Any]] = {
    "ACCOUNTS": {"application": "2c9180897e", "sourceName": "Active Directory"},
    "IDENTITIES_DETAILS": {"correlatedOnly": True},
    "IDENTITIES": {},
    "IDENTITY_PROFILE_IDENTITY_ERROR": {"authoritativeSource": "1234"},
    "ORPHAN_IDENTITIES": {},
    "UNCORRELATED_ACCOUNTS": {},
    "SEARCH_EXPORT": {"query": "name:a*"},
}
REQUIRED = {
    "ACCOUNTS": ("application", "sourceName"),
    "IDENTITIES_DETAILS": ("correlatedOnly",),
    "IDENTITIES": (),
    "IDENTITY_PROFILE_IDENTITY_ERROR": ("authoritativeSource",),
    "ORPHAN_IDENTITIES": (),
    "UNCORRELATED_ACCOUNTS": (),
    "SEARCH_EXPORT": ("query",),
}


def error_of(report: str, arguments: Any, file_format: Any = "csv") -> str:
    with pytest.raises(ExportValidationError) as info:
        validate_report(report, arguments, file_format)
    return str(info.value)


def test_the_seven_documented_types() -> None:
    assert set(REPORT_TYPES) == set(MINIMAL)
    assert {name: REPORT_TYPES[name].required for name in REPORT_TYPES} == REQUIRED


class TestReportType:
    @pytest.mark.parametrize("name", ["accounts", "CERTIFICATIONS", "", None])
    def test_unknown(self, name: Any) -> None:
        message = error_of(name, {})
        assert message.startswith(f"reportType: {name!r} is not a report type (allowed: ACCOUNTS,")

    def test_lookup(self) -> None:
        assert report_type("ACCOUNTS") is REPORT_TYPES["ACCOUNTS"]


class TestArguments:
    @pytest.mark.parametrize("name", sorted(MINIMAL))
    def test_minimal_arguments_pass(self, name: str) -> None:
        validate_report(report_type=name, arguments=MINIMAL[name], file_format="csv")

    @pytest.mark.parametrize(
        ("name", "argument"), [(n, a) for n, required in REQUIRED.items() for a in required]
    )
    def test_each_required_argument(self, name: str, argument: str) -> None:
        arguments = {k: v for k, v in MINIMAL[name].items() if k != argument}
        assert error_of(name, arguments) == f"arguments.{argument}: is required for {name}"

    def test_none_arguments_mean_empty(self) -> None:
        validate_report("IDENTITIES", None, "pdf")
        assert error_of("SEARCH_EXPORT", None) == "arguments.query: is required for SEARCH_EXPORT"

    def test_arguments_must_be_an_object(self) -> None:
        assert error_of("IDENTITIES", ["x"]) == "arguments: expected an object, got list"

    def test_unknown_argument_lists_the_allowed_ones(self) -> None:
        # Stricter than the vendor on purpose (it ignores unknown keys): the message says so.
        assert error_of("IDENTITIES", {"correlatedonly": True}) == (
            "arguments.correlatedonly: not an argument of IDENTITIES (allowed: correlatedOnly); "
            "SailPoint would silently ignore it, so it is refused as a likely typo"
        )

    @pytest.mark.parametrize(
        ("name", "arguments", "message"),
        [
            (
                "ACCOUNTS",
                {**MINIMAL["ACCOUNTS"], "sourceName": ""},
                "arguments.sourceName: '' is not a non-empty string",
            ),
            (
                # removed from the spec in June 2024: an unknown key, whatever its value
                "ACCOUNTS",
                {**MINIMAL["ACCOUNTS"], "defaultS3Bucket": "false"},
                "arguments.defaultS3Bucket: not an argument of ACCOUNTS "
                "(allowed: application, sourceName); "
                "SailPoint would silently ignore it, so it is refused as a likely typo",
            ),
            (
                "IDENTITIES_DETAILS",
                {"correlatedOnly": 1},
                "arguments.correlatedOnly: 1 is not a boolean (true or false)",
            ),
            (
                "IDENTITY_PROFILE_IDENTITY_ERROR",
                {"authoritativeSource": 7},
                "arguments.authoritativeSource: 7 is not a non-empty string",
            ),
        ],
    )
    def test_value_kinds(self, name: str, arguments: dict[str, Any], message: str) -> None:
        assert error_of(name, arguments) == message

    @pytest.mark.parametrize(("key", "value"), [("defaultS3Bucket", False), ("s3Bucket", "b")])
    def test_accounts_optional_bucket_arguments(self, key: str, value: Any) -> None:
        """Removed from every report type in June 2024: refused like any unknown key."""
        assert REPORT_TYPES["ACCOUNTS"].argument_names == ("application", "sourceName")
        assert error_of("ACCOUNTS", {**MINIMAL["ACCOUNTS"], key: value}) == (
            f"arguments.{key}: not an argument of ACCOUNTS (allowed: application, sourceName); "
            "SailPoint would silently ignore it, so it is refused as a likely typo"
        )


class TestSelectedFormats:
    @pytest.mark.parametrize("name", ["ORPHAN_IDENTITIES", "UNCORRELATED_ACCOUNTS"])
    @pytest.mark.parametrize(
        ("formats", "file_format"),
        [(["CSV"], "csv"), (["PDF"], "pdf"), (["CSV", "PDF"], "pdf"), (["PDF", "CSV"], "CSV")],
    )
    def test_subsets(self, name: str, formats: list[str], file_format: str) -> None:
        validate_report(name, {"selectedFormats": formats}, file_format)

    @pytest.mark.parametrize("name", ["ORPHAN_IDENTITIES", "UNCORRELATED_ACCOUNTS"])
    @pytest.mark.parametrize(
        ("formats", "index", "wrong", "meant"),
        [
            (["pdf"], 0, "pdf", "PDF"),
            (["csv"], 0, "csv", "CSV"),
            (["CSV", "Pdf"], 1, "Pdf", "PDF"),
            (["pdf", "csv"], 0, "pdf", "PDF"),
        ],
    )
    def test_wrong_case_is_refused_not_folded(
        self, name: str, formats: list[str], index: int, wrong: str, meant: str
    ) -> None:
        """The spec's values are exactly CSV and PDF: the vendor answers 400 to ``pdf``."""
        arguments = {"selectedFormats": formats}
        assert error_of(name, arguments, "csv") == (
            f"arguments.selectedFormats[{index}]: {wrong!r} is not allowed "
            f"(allowed, case-exact: CSV, PDF); did you mean {meant!r}?"
        )
        assert arguments == {"selectedFormats": formats}  # nothing rewritten behind our back

    @pytest.mark.parametrize(
        ("formats", "message"),
        [
            ([], "arguments.selectedFormats: must name at least one of CSV, PDF"),
            (
                ["XLSX"],
                "arguments.selectedFormats[0]: 'XLSX' is not allowed "
                "(allowed, case-exact: CSV, PDF)",
            ),
            (["CSV", "CSV"], "arguments.selectedFormats[1]: 'CSV' is listed twice"),
            ([1], "arguments.selectedFormats[0]: 1 is not allowed (allowed, case-exact: CSV, PDF)"),
            ("CSV", "arguments.selectedFormats: expected a list, got str"),
        ],
    )
    def test_invalid(self, formats: Any, message: str) -> None:
        assert error_of("ORPHAN_IDENTITIES", {"selectedFormats": formats}) == message

    def test_file_format_must_be_selected(self) -> None:
        assert error_of("UNCORRELATED_ACCOUNTS", {"selectedFormats": ["CSV"]}, "pdf") == (
            "fileFormat: 'pdf' is not produced by this UNCORRELATED_ACCOUNTS run (it produces: csv)"
        )


class TestSearchExport:
    def test_full_arguments(self) -> None:
        validate_report(
            "SEARCH_EXPORT",
            {
                "query": "attributes.cloudLifecycleState:active",
                "indices": list(SEARCH_INDICES),
                "columns": "displayName, firstName,attributes.cloudLifecycleState,access.spread",
                "sort": ["displayName", "+id", "-created"],
            },
            "csv",
        )

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (
                {"indices": ["people"]},
                "arguments.indices[0]: 'people' is not allowed "
                "(allowed, case-exact: accessprofiles,",
            ),
            (
                {"indices": ["Identities"]},
                "arguments.indices[0]: 'Identities' is not allowed (allowed, case-exact: "
                "accessprofiles, accountactivities, entitlements, events, identities, roles, *); "
                "did you mean 'identities'?",
            ),
            ({"indices": "identities"}, "arguments.indices: expected a list, got str"),
            ({"columns": ["a", "b"]}, "arguments.columns: ['a', 'b'] is not a non-empty string"),
            ({"columns": "a,,b"}, "arguments.columns: column 2 '' is not an attribute name"),
            ({"columns": "a,b c"}, "arguments.columns: column 2 'b c' is not an attribute name"),
            ({"sort": "name"}, "arguments.sort: expected a list, got str"),
            ({"sort": ["name", "*id"]}, "arguments.sort[1]: '*id' is not a sort field"),
            ({"query": " "}, "arguments.query: ' ' is not a non-empty string"),
        ],
    )
    def test_invalid(self, arguments: dict[str, Any], message: str) -> None:
        assert error_of("SEARCH_EXPORT", {"query": "q", **arguments}).startswith(message)

    def test_only_csv_its_zip_of_csvs(self) -> None:
        assert REPORT_TYPES["SEARCH_EXPORT"].file_formats == ("csv",)
        assert error_of("SEARCH_EXPORT", {"query": "q"}, "pdf") == (
            "fileFormat: 'pdf' is not produced by this SEARCH_EXPORT run (it produces: csv)"
        )


class TestFileFormat:
    @pytest.mark.parametrize("name", sorted(set(MINIMAL) - {"SEARCH_EXPORT"}))
    @pytest.mark.parametrize("file_format", ["csv", "pdf", "CSV"])
    def test_csv_and_pdf(self, name: str, file_format: str) -> None:
        validate_report(name, MINIMAL[name], file_format)
        assert REPORT_TYPES[name].file_formats == ("csv", "pdf")

    @pytest.mark.parametrize("file_format", ["xlsx", "", None, "zip"])
    def test_unknown(self, file_format: Any) -> None:
        assert error_of("IDENTITIES", {}, file_format) == (
            f"fileFormat: {file_format!r} is not a file format (allowed: csv, pdf)"
        )

    def test_available_formats(self) -> None:
        identities = REPORT_TYPES["IDENTITIES"]
        assert available_formats(identities, None) == ("csv", "pdf")
        orphans = REPORT_TYPES["ORPHAN_IDENTITIES"]
        assert available_formats(orphans, {"selectedFormats": ["PDF"]}) == ("pdf",)


def test_argument_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="argument 'x': unknown kind 'date'"):
        Argument("x", "date")


class TestForeignTask:
    """Which answer of ``POST .../run`` is ours (VENDOR_APIS.md: use every signal)."""

    REQUEST = {"reportType": "ACCOUNTS", "arguments": {"application": "a", "sourceName": "s"}}
    ASKED = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

    @pytest.mark.parametrize(
        ("task", "foreign"),
        [
            ({}, False),  # no signal at all: adopt (the spec promises none)
            ({"reportType": "ACCOUNTS", "created": "2026-11-20T12:00:01Z"}, False),
            ({"reportType": "ACCOUNTS", "created": "2026-11-20T11:59:00Z"}, False),  # skew
            ({"reportType": "IDENTITIES"}, True),
            ({"attributes": {"sourceName": "other"}}, True),
            ({"attributes": {"sourceName": "s", "application": "a"}}, False),
            ({"created": "2026-11-20T11:30:00Z"}, True),
            ({"launched": "2026-11-20T11:30:00.000+00:00"}, True),
            ({"created": "not a time"}, False),
        ],
    )
    def test_every_signal_counts(self, task: dict[str, Any], foreign: bool) -> None:
        from compliance_exports.vendors.sailpoint.hook import foreign_reason

        assert (foreign_reason(task, self.REQUEST, self.ASKED) is not None) is foreign
