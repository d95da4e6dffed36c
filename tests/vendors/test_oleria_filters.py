from __future__ import annotations

import datetime as dt
import operator
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
    catalogue_section,
    filter_rows,
    known_contexts,
    parse_duration,
    row_matches,
    sort_key,
    sort_rows,
    validate_download_request,
    value_count_rule,
)

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
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
        found = catalogue_section(context)
        assert found is not None
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


def row(**values: Any) -> dict[str, Any]:
    return values


class TestRowMatches:
    @pytest.mark.parametrize(
        ("data_type", "filter_type", "values", "value", "expected"),
        [
            ("string", "eq", ["Finance"], "Finance", True),
            ("string", "eq", ["Finance"], "finance", False),
            ("string", "ne", ["Finance"], "Sales", True),
            ("string", "in", ["A", "B"], "B", True),
            ("string", "notIn", ["A", "B"], "B", False),
            ("string", "contains", ["NAN"], "Finance", True),
            ("string", "notContains", ["nan"], "Finance", False),
            ("string", "matches", ["^Fin.*e$"], "Finance", True),
            ("string", "matches", ["^ance"], "Finance", False),
            ("number", "eq", ["3"], 3, True),
            ("number", "eq", ["3"], "3.0", True),
            ("number", "gt", ["3"], 3, False),
            ("number", "gte", ["3"], 3, True),
            ("number", "lt", ["3"], 2.5, True),
            ("number", "lte", ["3"], 4, False),
            ("number", "between", ["1", "3"], 3, True),
            ("number", "between", ["1", "3"], 0, False),
            ("number", "in", ["1", "2"], 2, True),
            ("number", "notIn", ["1", "2"], 5, True),
            ("number", "eq", ["3"], "not a number", False),
            ("boolean", "eq", ["true"], True, True),
            ("boolean", "eq", ["false"], "true", False),
            ("boolean", "ne", [False], True, True),
            ("timestamp", "eq", ["2026-11-01T00:00:00Z"], "2026-11-01T01:00:00+01:00", True),
            ("timestamp", "gt", ["2026-11-01T00:00:00Z"], "2026-11-02T00:00:00Z", True),
            ("timestamp", "lt", ["2026-11-01"], dt.datetime(2026, 10, 1, tzinfo=dt.UTC), True),
            (
                "timestamp",
                "between",
                ["2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"],
                "2026-11-15T00:00:00Z",
                True,
            ),
            ("timestamp", "last", ["7d"], "2026-11-20T12:00:00Z", True),
            ("timestamp", "last", ["7d"], "2026-11-14T11:59:59Z", False),
            ("timestamp", "last", ["24h"], "2026-11-21T12:00:01Z", False),
            ("timestamp", "last", ["30m"], "2026-11-21T11:30:00Z", True),
            ("enum", "eq", ["HUMAN"], "HUMAN", True),
            ("enum", "notIn", ["HUMAN"], "SERVICE", True),
        ],
    )
    def test_operator(
        self, data_type: str, filter_type: str, values: list[Any], value: Any, expected: bool
    ) -> None:
        entry = {"dataType": data_type, "field": "f", "filterType": filter_type, "values": values}
        assert row_matches(entry, row(f=value), now=NOW) is expected

    @pytest.mark.parametrize("filter_type", ["eq", "ne", "in", "notIn", "contains"])
    def test_null_matches_nothing_but_is_null(self, filter_type: str) -> None:
        entry = a_filter("string", filter_type)
        assert not row_matches(entry, row(department=None), now=NOW)
        assert not row_matches(entry, row(), now=NOW)

    def test_is_null_and_is_not_null(self) -> None:
        is_null, is_not_null = a_filter("string", "isNull"), a_filter("string", "isNotNull")
        assert row_matches(is_null, row(), now=NOW)
        assert row_matches(is_null, row(department=None), now=NOW)
        assert not row_matches(is_null, row(department="x"), now=NOW)
        assert row_matches(is_not_null, row(department=""), now=NOW)

    def test_now_must_be_aware(self) -> None:
        with pytest.raises(ValueError, match="must be timezone-aware"):
            row_matches(a_filter("string", "eq"), row(), now=dt.datetime(2026, 1, 1))

    def test_invalid_filter_is_refused_when_applied(self) -> None:
        with pytest.raises(ExportValidationError, match=r"^filter\.filterType: "):
            row_matches(a_filter("boolean", "gt", ["true"]), row(department=True), now=NOW)

    def test_filters_are_and_combined(self) -> None:
        rows = [
            row(department="Finance", n=1),
            row(department="Finance", n=5),
            row(department="HR", n=5),
        ]
        kept = filter_rows(
            rows,
            [a_filter("string", "eq"), {**a_filter("number", "gt", ["2"]), "field": "n"}],
            now=NOW,
        )
        assert kept == [rows[1]]


_NUMBER_OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.integers(-50, 50)), max_size=30),
    filter_type=st.sampled_from(sorted(_NUMBER_OPS)),
    threshold=st.integers(-50, 50),
)
def test_number_filters_agree_with_python(
    values: list[int | None], filter_type: str, threshold: int
) -> None:
    rows = [row(n=v) for v in values]
    entry = {
        "dataType": "number",
        "field": "n",
        "filterType": filter_type,
        "values": [str(threshold)],
    }
    expected = [
        r for r in rows if r["n"] is not None and _NUMBER_OPS[filter_type](r["n"], threshold)
    ]
    assert filter_rows(rows, [entry], now=NOW) == expected


class TestSortRows:
    def test_ascending_puts_nulls_last_and_descending_first(self) -> None:
        rows = [row(a=2), row(a=None), row(a=1), row()]
        assert [r.get("a") for r in sort_rows(rows, [{"field": "a", "sortType": "asc"}])] == [
            1,
            2,
            None,
            None,
        ]
        assert [r.get("a") for r in sort_rows(rows, [{"field": "a", "sortType": "desc"}])] == [
            None,
            None,
            2,
            1,
        ]

    def test_first_key_is_most_significant_and_sort_is_stable(self) -> None:
        rows = [
            row(d="b", n=1, i=0),
            row(d="a", n=2, i=1),
            row(d="a", n=1, i=2),
            row(d="a", n=2, i=3),
        ]
        ordered = sort_rows(
            rows, [{"field": "d", "sortType": "asc"}, {"field": "n", "sortType": "desc"}]
        )
        assert [r["i"] for r in ordered] == [1, 3, 2, 0]

    def test_invalid_sort_is_refused(self) -> None:
        with pytest.raises(ExportValidationError, match=r"^params\.sortBy\[0\]\.sortType: "):
            sort_rows([], [{"field": "a", "sortType": "up"}])

    def test_sort_key_orders_mixed_values(self) -> None:
        stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        values: list[Any] = ["b", stamp, 2, True, "a", 1.5]
        assert sorted(values, key=sort_key) == [True, 1.5, 2, stamp, "a", "b"]

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=20), st.booleans())
    def test_matches_a_reference_sort(self, values: list[int | None], descending: bool) -> None:
        rows = [row(v=v, i=i) for i, v in enumerate(values)]
        result = sort_rows(rows, [{"field": "v", "sortType": "desc" if descending else "asc"}])
        present = sorted(
            (r for r in rows if r["v"] is not None), key=lambda r: r["v"], reverse=descending
        )
        missing = [r for r in rows if r["v"] is None]
        assert result == (missing + present if descending else present + missing)


def test_row_filter_parses_values_once() -> None:
    parsed = RowFilter.from_dict(a_filter("string", "matches", ["^F"]))
    assert isinstance(parsed.values[0], re.Pattern)
    assert parsed.matches(row(department="Finance"), now=NOW)


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


@settings(max_examples=150, deadline=None)
@given(
    age=st.timedeltas(min_value=dt.timedelta(days=-2), max_value=dt.timedelta(days=30)),
    amount=st.integers(1, 500),
    unit=st.sampled_from(["m", "h", "d", "w"]),
)
def test_last_keeps_exactly_the_recent_past(age: dt.timedelta, amount: int, unit: str) -> None:
    window = parse_duration(f"{amount}{unit}")
    entry = a_filter("timestamp", "last", [f"{amount}{unit}"])
    stamp = (NOW - age).isoformat()
    assert row_matches(entry, row(department=stamp), now=NOW) is (dt.timedelta(0) <= age <= window)
