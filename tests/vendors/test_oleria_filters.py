from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.vendors.oleria.filters import (
    CATALOGUE,
    DATA_TYPES,
    FILTER_TYPES,
    RowFilter,
    known_contexts,
    parse_duration,
    validate_download_request,
    value_count_rule,
)

ALL_FILTER_TYPES = sorted({ft for allowed in FILTER_TYPES.values() for ft in allowed})

DOCUMENTED_CONTEXTS = {
    "Access Inventory": [
        "accessInventoryIdentitiesV2",
        "accessInventoryEmployeesV2",
        "accessInventoryNhiV2",
        "accessInventoryAccounts",
        "accessInventoryApplicationAccountsV2",
        "accessInventoryApplicationInstancesV2",
        "accessInventoryGroupsV2",
        "accessInventoryRolesV2",
        "accessInventoryResourceInstancesV2",
    ],
    "Identity & Employees": ["identities", "employees", "employeeAccessInsights", "oleriaUsers"],
    "Utilization": ["accountUtilization", "groupUtilizationAccounts"],
    "Risk & Activity": ["risks", "risksV2", "riskMonitoringDetail", "activityAnalysis"],
    "Identity Assessments": [
        "identityAssessmentRiskDownload",
        "identityAssessmentEntitlementUtilization",
        "identityAssessmentResourceInstanceUtilization",
        "identityAssessmentSimilarGroups",
    ],
    "Identity Lifecycle": ["ilmEmployeeEvents", "ilmWorkflowEmployeeEvents"],
}

# One valid value per dataType (and for `last`, a duration).
GOOD_VALUE = {
    "string": "Finance",
    "number": "42",
    "boolean": "true",
    "timestamp": "2026-11-01T00:00:00Z",
    "enum": "HUMAN",
}
BAD_VALUE = {
    "string": "",
    "number": "forty-two",
    "boolean": "yes",
    "timestamp": "last tuesday",
    "enum": "",
}


def a_filter(data_type: str, filter_type: str, values: list[Any] | None = None) -> dict[str, Any]:
    if values is None:
        values = good_values(data_type, filter_type)
    return {
        "dataType": data_type,
        "field": "department",
        "filterType": filter_type,
        "values": values,
    }


def good_values(data_type: str, filter_type: str) -> list[Any]:
    low, _ = value_count_rule(filter_type)
    if filter_type == "last":
        return ["7d"]
    if filter_type == "between":
        return {
            "number": ["1", "2"],
            "timestamp": ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"],
        }[data_type]
    return [GOOD_VALUE[data_type]] * low


def error_of(context: str, filter_by: list[Any], sort_by: list[Any] | None = None) -> str:
    with pytest.raises(ExportValidationError) as info:
        validate_download_request(context, filter_by, sort_by or [])
    return str(info.value)


class TestCatalogue:
    @pytest.mark.parametrize(
        ("section", "context"),
        [(s, c) for s, contexts in DOCUMENTED_CONTEXTS.items() for c in contexts],
    )
    def test_every_documented_context_is_known_in_its_section(
        self, section: str, context: str
    ) -> None:
        (found,) = [s for s in CATALOGUE if context in s.contexts]
        assert (found.name, found.published) == (section, True)
        validate_download_request(context, [], [])

    def test_unpublished_sections_are_flagged(self) -> None:
        unpublished = {s.name for s in CATALOGUE if not s.published}
        assert unpublished == {"External Access", "Access Requests", "Reference"}
        assert all(s.contexts for s in CATALOGUE)

    def test_unknown_context_is_refused(self) -> None:
        message = error_of("nope", [])
        assert message.startswith("context: unknown context 'nope'")
        assert "extra_contexts" in message

    def test_wrong_case_gets_a_hint(self) -> None:
        assert "did you mean 'risksV2'?" in error_of("risksv2", [])

    @pytest.mark.parametrize("context", ["", None, 7])
    def test_context_must_be_a_name(self, context: Any) -> None:
        assert error_of(context, []).startswith("context: ")

    @pytest.mark.parametrize("extra", ["guestAccounts", [""], [None]])
    def test_extra_contexts_must_be_a_list_of_names(self, extra: Any) -> None:
        with pytest.raises(ExportValidationError, match=r"^extra_contexts: expected a list"):
            validate_download_request("risks", [], [], extra_contexts=extra)

    def test_extra_contexts_add_names_without_code(self) -> None:
        validate_download_request("guestAccounts", [], [], extra_contexts=["guestAccounts"])
        assert "guestAccounts" in known_contexts(["guestAccounts"])
        assert "guestAccounts" not in known_contexts()


class TestFilterMatrix:
    def test_matrix_is_the_documented_one(self) -> None:
        assert {dt_: set(ft) for dt_, ft in FILTER_TYPES.items()} == {
            "string": {"eq", "ne", "in", "notIn", "contains", "notContains", "matches"}
            | {"isNull", "isNotNull"},
            "number": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "notIn"}
            | {"isNull", "isNotNull"},
            "boolean": {"eq", "ne", "isNull", "isNotNull"},
            "timestamp": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "last"}
            | {"isNull", "isNotNull"},
            "enum": {"eq", "ne", "in", "notIn", "isNull", "isNotNull"},
        }

    @pytest.mark.parametrize(
        ("data_type", "filter_type"),
        [(d, f) for d, allowed in FILTER_TYPES.items() for f in allowed],
    )
    def test_every_allowed_operator_passes(self, data_type: str, filter_type: str) -> None:
        validate_download_request("risks", [a_filter(data_type, filter_type)], [])

    @pytest.mark.parametrize(
        ("data_type", "filter_type"),
        [(d, f) for d in DATA_TYPES for f in ALL_FILTER_TYPES if f not in FILTER_TYPES[d]],
    )
    def test_every_disallowed_operator_is_refused(self, data_type: str, filter_type: str) -> None:
        ok = a_filter("string", "eq")
        bad = a_filter(data_type, filter_type, values=["1"])
        assert error_of("risks", [ok, bad]) == (
            f"params.filterBy[1].filterType: {filter_type!r} is not allowed for dataType "
            f"{data_type!r} (allowed: {', '.join(FILTER_TYPES[data_type])})"
        )

    def test_unknown_data_type(self) -> None:
        assert error_of("risks", [a_filter("date", "eq", ["x"])]) == (
            "params.filterBy[0].dataType: 'date' is not a valid dataType "
            "(allowed: string, number, boolean, timestamp, enum)"
        )


class TestValueCounts:
    @pytest.mark.parametrize(
        ("filter_type", "expected"),
        [
            ("between", (2, 2)),
            ("in", (1, None)),
            ("notIn", (1, None)),
            ("isNull", (0, 0)),
            ("isNotNull", (0, 0)),
            ("eq", (1, 1)),
            ("gt", (1, 1)),
            ("last", (1, 1)),
            ("matches", (1, 1)),
        ],
    )
    def test_rule(self, filter_type: str, expected: tuple[int, int | None]) -> None:
        assert value_count_rule(filter_type) == expected

    @pytest.mark.parametrize(
        ("data_type", "filter_type", "count", "wording"),
        [
            ("number", "between", 1, "exactly 2 values"),
            ("number", "between", 3, "exactly 2 values"),
            ("enum", "in", 0, "at least 1 value"),
            ("string", "notIn", 0, "at least 1 value"),
            ("string", "isNull", 1, "no values"),
            ("timestamp", "isNotNull", 2, "no values"),
            ("string", "eq", 0, "exactly 1 value"),
            ("number", "gt", 2, "exactly 1 value"),
            ("timestamp", "last", 2, "exactly 1 value"),
            ("boolean", "ne", 2, "exactly 1 value"),
        ],
    )
    def test_wrong_count_is_refused(
        self, data_type: str, filter_type: str, count: int, wording: str
    ) -> None:
        bad = a_filter(
            data_type, filter_type, values=["7d" if filter_type == "last" else "1"] * count
        )
        assert error_of("risks", [bad]) == (
            f"params.filterBy[0].values: {filter_type!r} takes {wording}, got {count}"
        )

    def test_in_takes_many(self) -> None:
        validate_download_request("risks", [a_filter("enum", "in", ["A", "B", "C", "D"])], [])

    def test_values_must_be_a_list(self) -> None:
        assert error_of("risks", [a_filter("string", "eq", values="x")]) == (  # type: ignore[arg-type]
            "params.filterBy[0].values: expected a list, got str"
        )


class TestValueChecks:
    @pytest.mark.parametrize("data_type", DATA_TYPES)
    def test_bad_value_names_the_value_path(self, data_type: str) -> None:
        message = error_of("risks", [a_filter(data_type, "eq", [BAD_VALUE[data_type]])])
        assert message.startswith("params.filterBy[0].values[0]: ")
        assert f"(dataType {data_type!r})" in message

    @pytest.mark.parametrize(
        ("data_type", "value"),
        [
            ("number", 3),
            ("number", -1.5),
            ("number", " 7 "),
            ("number", "1e3"),
            ("boolean", True),
            ("boolean", "FALSE"),
            ("timestamp", "2026-11-21"),
            ("timestamp", "2026-11-21T10:00:00.123+02:00"),
            ("enum", "ADMIN"),
        ],
    )
    def test_accepted_values(self, data_type: str, value: Any) -> None:
        validate_download_request("risks", [a_filter(data_type, "eq", [value])], [])

    @pytest.mark.parametrize(
        ("data_type", "value", "reason"),
        [
            ("number", True, "is not a number"),
            ("number", "nan", "is not a finite number"),
            ("number", None, "is not a number"),
            ("boolean", 1, "is not a boolean"),
            ("timestamp", 1700000000, "is not an ISO-8601 timestamp"),
            ("string", 5, "is not a non-empty string"),
        ],
    )
    def test_refused_values(self, data_type: str, value: Any, reason: str) -> None:
        assert reason in error_of("risks", [a_filter(data_type, "eq", [value])])

    def test_between_bounds_must_be_ordered(self) -> None:
        message = error_of("risks", [a_filter("number", "between", ["5", "1"])])
        assert message == (
            "params.filterBy[0].values: 'between' needs the lower bound first, got 5.0 > 1.0"
        )

    def test_matches_needs_a_regular_expression(self) -> None:
        message = error_of("risks", [a_filter("string", "matches", ["(unclosed"])])
        assert message.startswith("params.filterBy[0].values[0]: '(unclosed' is not a regular")

    @pytest.mark.parametrize("duration", ["7x", "0d", "-1h", "7", "d", "1.5h", "7 d"])
    def test_last_needs_a_duration(self, duration: str) -> None:
        message = error_of("risks", [a_filter("timestamp", "last", [duration])])
        assert message.startswith("params.filterBy[0].values[0]: ")
        assert "is not a duration" in message


class TestFilterShape:
    def test_entry_must_be_an_object(self) -> None:
        assert error_of("risks", ["eq"]) == "params.filterBy[0]: expected an object, got str"

    def test_missing_key(self) -> None:
        entry = a_filter("string", "eq")
        del entry["field"]
        assert error_of("risks", [entry]) == "params.filterBy[0].field: is required"

    def test_unknown_key(self) -> None:
        entry = {**a_filter("string", "eq"), "operator": "eq"}
        assert error_of("risks", [entry]) == (
            "params.filterBy[0].operator: unknown key "
            "(allowed: dataType, field, filterType, values)"
        )

    @pytest.mark.parametrize("field", ["", "  ", None])
    def test_field_must_be_named(self, field: Any) -> None:
        entry = {**a_filter("string", "eq"), "field": field}
        assert error_of("risks", [entry]).startswith("params.filterBy[0].field: ")

    def test_filter_by_must_be_a_list(self) -> None:
        assert error_of("risks", {"a": 1}) == "params.filterBy: expected a list, got dict"  # type: ignore[arg-type]


class TestSortBy:
    def test_valid(self) -> None:
        validate_download_request(
            "risks",
            [],
            [{"field": "createdAt", "sortType": "desc"}, {"field": "a", "sortType": "asc"}],
        )

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            (
                {"field": "a", "sortType": "ASC"},
                "params.sortBy[1].sortType: 'ASC' is not a valid sortType (allowed: asc, desc)",
            ),
            ({"field": "", "sortType": "asc"}, "params.sortBy[1].field: '' is not a field name"),
            ({"sortType": "asc"}, "params.sortBy[1].field: is required"),
            (
                {"field": "a", "sortType": "asc", "nulls": "first"},
                "params.sortBy[1].nulls: unknown key (allowed: field, sortType)",
            ),
        ],
    )
    def test_invalid(self, entry: dict[str, Any], expected: str) -> None:
        assert error_of("risks", [], [{"field": "x", "sortType": "asc"}, entry]).startswith(
            expected
        )


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("7d", dt.timedelta(days=7)),
            ("24h", dt.timedelta(hours=24)),
            ("30m", dt.timedelta(minutes=30)),
            ("2w", dt.timedelta(weeks=2)),
            ("365d", dt.timedelta(days=365)),
        ],
    )
    def test_units(self, text: str, expected: dt.timedelta) -> None:
        assert parse_duration(text) == expected


def test_row_filter_parses_values_once() -> None:
    parsed = RowFilter.from_dict(a_filter("string", "matches", ["^F"]))
    assert isinstance(parsed.values[0], re.Pattern)
    assert parsed.values[0].pattern == "^F"


VALID_VALUE_FOR = {**GOOD_VALUE, "date": "x"}


@settings(max_examples=200, deadline=None)
@given(
    data_type=st.sampled_from([*DATA_TYPES, "date"]),
    filter_type=st.sampled_from([*ALL_FILTER_TYPES, "like"]),
    count=st.integers(0, 4),
)
def test_first_broken_rule_is_reported(data_type: str, filter_type: str, count: int) -> None:
    """dataType, then filterType, then the value count: the first rule broken is named."""
    value = "7d" if filter_type == "last" else VALID_VALUE_FOR[data_type]
    values = ["1", "2"] if filter_type == "between" and count == 2 else [value] * count
    if filter_type == "between" and count == 2 and data_type == "timestamp":
        values = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    entry = a_filter(data_type, filter_type, values)
    low, high = value_count_rule(filter_type)
    if data_type not in FILTER_TYPES:
        broken = "dataType"
    elif filter_type not in FILTER_TYPES[data_type]:
        broken = "filterType"
    elif count < low or (high is not None and count > high):
        broken = "values"
    else:
        validate_download_request("risks", [entry], [])
        return
    with pytest.raises(ExportValidationError) as info:
        validate_download_request("risks", [entry], [])
    assert info.value.field == f"params.filterBy[0].{broken}"
