"""The Oleria simulator's request rules over HTTP: what ``POST /v1/downloads`` accepts.

Every expectation is transcribed from VENDOR_APIS.md section 1 here, in the test, not
read from the simulator's tables, so a slip in either shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator
from tests.simulators.test_oleria import OleriaApi

pytestmark = pytest.mark.integration

CONTEXT = "accessInventoryIdentitiesV2"

# DOC: "contexts (DOC), grouped as the vendor's export catalogue" (published sections).
DOCUMENTED_CONTEXTS = [
    "accessInventoryIdentitiesV2",
    "accessInventoryEmployeesV2",
    "accessInventoryNhiV2",
    "accessInventoryAccounts",
    "accessInventoryApplicationAccountsV2",
    "accessInventoryApplicationInstancesV2",
    "accessInventoryGroupsV2",
    "accessInventoryRolesV2",
    "accessInventoryResourceInstancesV2",
    "identities",
    "employees",
    "employeeAccessInsights",
    "oleriaUsers",
    "accountUtilization",
    "groupUtilizationAccounts",
    "risks",
    "risksV2",
    "riskMonitoringDetail",
    "activityAnalysis",
    "identityAssessmentRiskDownload",
    "identityAssessmentEntitlementUtilization",
    "identityAssessmentResourceInstanceUtilization",
    "identityAssessmentSimilarGroups",
    "ilmEmployeeEvents",
    "ilmWorkflowEmployeeEvents",
]
# CHOICE: "e.g. externalUsers, externallySharedAssets, accessRequests, applications, resources"
GUESSED_CONTEXTS = ["externalUsers", "externallySharedAssets", "accessRequests"]
GUESSED_CONTEXTS += ["applications", "resources"]

# DOC: the dataType x filterType table.
MATRIX = {
    "string": "eq ne in notIn contains notContains matches isNull isNotNull",
    "number": "eq ne gt gte lt lte between in notIn isNull isNotNull",
    "boolean": "eq ne isNull isNotNull",
    "timestamp": "eq ne gt gte lt lte between last isNull isNotNull",
    "enum": "eq ne in notIn isNull isNotNull",
}
ALLOWED = [(d, f) for d, ops in MATRIX.items() for f in ops.split()]
EVERY_OPERATOR = sorted({f for _, f in ALLOWED})
DISALLOWED = [(d, f) for d in MATRIX for f in EVERY_OPERATOR if (d, f) not in ALLOWED]

# A column of accessInventoryIdentitiesV2 of each dataType (the CHOICE column list).
FIELD = {
    "string": "department",
    "number": "dormantDays",
    "boolean": "isAdmin",
    "timestamp": "createdAt",
    "enum": "identityType",
}
ONE_VALUE = {
    "string": "Finance",
    "number": 42,
    "boolean": True,
    "timestamp": "2026-01-01T00:00:00Z",
    "enum": "human",
}
TWO_VALUES = {"number": [1, 30], "timestamp": ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]}


def good_values(data_type: str, filter_type: str) -> list[Any]:
    """DOC: between 2, in/notIn 1+, isNull/isNotNull none, last one duration, others 1."""
    if filter_type == "between":
        return TWO_VALUES[data_type]
    if filter_type in {"isNull", "isNotNull"}:
        return []
    if filter_type == "last":
        return ["7d"]
    if filter_type in {"in", "notIn"}:
        return [ONE_VALUE[data_type], "x" if data_type != "number" else 7]
    return [ONE_VALUE[data_type]]


def a_filter(data_type: str, filter_type: str, values: list[Any] | None = None) -> dict[str, Any]:
    return {
        "dataType": data_type,
        "field": FIELD.get(data_type, "department"),
        "filterType": filter_type,
        "values": good_values(data_type, filter_type) if values is None else values,
    }


@pytest.fixture(scope="module")
def oleria() -> Iterator[RunningSimulator]:
    sim = start_simulator("oleria", seed=3, rows=20, latency=0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def http(oleria: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=oleria.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def defaults(http: httpx.Client) -> dict[str, Any]:
    config: dict[str, Any] = http.get("/_sim/config").json()
    return config


@pytest.fixture
def api(
    oleria: RunningSimulator, http: httpx.Client, defaults: dict[str, Any]
) -> Iterator[OleriaApi]:
    yield OleriaApi(oleria, http)
    http.patch("/_sim/config", json=defaults)


def refusal(answer: httpx.Response) -> str:
    """The message of a 400 ``{code, message}`` (DOC: flat errors)."""
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == "invalid_request"
    message: str = body["message"]
    return message


def post(api: OleriaApi, body: Any) -> httpx.Response:
    return api.http.post("/v1/downloads", json=body, headers=api.auth)


# --------------------------------------------------------------------------- catalogue


class TestCatalogue:
    @pytest.mark.parametrize("context", DOCUMENTED_CONTEXTS)
    def test_every_documented_context_is_accepted(self, api: OleriaApi, context: str) -> None:
        assert api.create(context).status_code == 201

    @pytest.mark.parametrize("context", GUESSED_CONTEXTS)
    def test_guessed_unpublished_names_are_accepted_by_default(
        self, api: OleriaApi, context: str
    ) -> None:
        assert api.create(context).status_code == 201

    def test_unpublished_names_are_a_setting(self, api: OleriaApi) -> None:
        api.configure(unpublished_contexts=["guestAccounts"])
        assert api.create("guestAccounts").status_code == 201
        assert "unknown context 'accessRequests'" in refusal(api.create("accessRequests"))
        assert api.create("risks").status_code == 201  # published names stay

    def test_extra_contexts_add_names(self, api: OleriaApi) -> None:
        assert refusal(api.create("partnerAccess")).startswith("context: ")
        api.configure(extra_contexts=["partnerAccess"])
        assert api.create("partnerAccess").status_code == 201

    @pytest.mark.parametrize("context", ["noSuchContext", "risksv2", "", None, 7])
    def test_anything_else_is_refused(self, api: OleriaApi, context: Any) -> None:
        assert refusal(post(api, {"context": context})).startswith("context: ")

    def test_context_is_required(self, api: OleriaApi) -> None:
        assert refusal(post(api, {"params": {}})).startswith("context: ")


# --------------------------------------------------------------------------- matrix


class TestFilterMatrix:
    @pytest.mark.parametrize(("data_type", "filter_type"), ALLOWED)
    def test_every_allowed_operator_is_accepted(
        self, api: OleriaApi, data_type: str, filter_type: str
    ) -> None:
        answer = api.create(filterBy=[a_filter(data_type, filter_type)])
        assert answer.status_code == 201, answer.text

    @pytest.mark.parametrize(("data_type", "filter_type"), DISALLOWED)
    def test_every_other_operator_is_400(
        self, api: OleriaApi, data_type: str, filter_type: str
    ) -> None:
        """DOC: "An operator not allowed for its dataType is a 400"."""
        good = a_filter("string", "eq")
        bad = a_filter(data_type, filter_type, values=["1"])
        message = refusal(api.create(filterBy=[good, bad]))
        assert message.startswith(
            f"params.filterBy[1].filterType: {filter_type!r} is not allowed for dataType "
            f"{data_type!r}"
        )

    @pytest.mark.parametrize("data_type", ["date", "String", None])
    def test_unknown_data_type_is_400(self, api: OleriaApi, data_type: Any) -> None:
        entry = {**a_filter("string", "eq"), "dataType": data_type}
        assert refusal(api.create(filterBy=[entry])).startswith("params.filterBy[0].dataType: ")

    @pytest.mark.parametrize(
        ("entry", "broken"),
        [
            ({"dataType": "date", "filterType": "like", "values": []}, "dataType"),
            ({"dataType": "boolean", "filterType": "gt", "values": []}, "filterType"),
            ({"dataType": "number", "filterType": "between", "values": ["x"]}, "values"),
            ({"dataType": "number", "filterType": "eq", "values": ["x"]}, "values[0]"),
        ],
    )
    def test_the_first_broken_rule_is_named(
        self, api: OleriaApi, entry: dict[str, Any], broken: str
    ) -> None:
        """CHOICE: dataType, then filterType, then the value count, then each value."""
        message = refusal(api.create(filterBy=[{"field": "department", **entry}]))
        assert message.startswith(f"params.filterBy[0].{broken}: ")


# --------------------------------------------------------------------------- value counts


class TestValueCounts:
    @pytest.mark.parametrize(
        ("data_type", "filter_type", "count"),
        [
            ("number", "between", 1),
            ("number", "between", 3),
            ("timestamp", "between", 1),
            ("enum", "in", 0),
            ("string", "notIn", 0),
            ("string", "isNull", 1),
            ("timestamp", "isNotNull", 2),
            ("string", "eq", 0),
            ("number", "gt", 2),
            ("timestamp", "last", 2),
            ("boolean", "ne", 2),
            ("string", "contains", 2),
        ],
    )
    def test_wrong_counts_are_400(
        self, api: OleriaApi, data_type: str, filter_type: str, count: int
    ) -> None:
        value = "7d" if filter_type == "last" else ONE_VALUE[data_type]
        entry = a_filter(data_type, filter_type, values=[value] * count)
        message = refusal(api.create(filterBy=[entry]))
        assert message.startswith("params.filterBy[0].values: ")
        assert message.endswith(f"got {count}")

    def test_in_takes_many(self, api: OleriaApi) -> None:
        entry = a_filter("enum", "in", ["human", "nonHuman", "serviceAccount", "other"])
        assert api.create(filterBy=[entry]).status_code == 201

    @pytest.mark.parametrize("values", ["Finance", {"a": 1}, 3])
    def test_values_must_be_a_list(self, api: OleriaApi, values: Any) -> None:
        entry = {**a_filter("string", "eq"), "values": values}
        message = refusal(api.create(filterBy=[entry]))
        assert message.startswith("params.filterBy[0].values: expected a list")


# --------------------------------------------------------------------------- values


class TestValues:
    @pytest.mark.parametrize(
        ("data_type", "value"),
        [
            ("number", 3),
            ("number", -1.5),
            ("number", "7"),
            ("number", " 7 "),
            ("number", "1e3"),
            ("boolean", False),
            ("boolean", "FALSE"),
            ("boolean", "true"),
            ("timestamp", "2026-11-21T10:00:00Z"),
            ("timestamp", "2026-11-21T10:00:00.123+02:00"),
            ("timestamp", "2026-11-21"),
            ("enum", "serviceAccount"),
            ("string", "Finance & Ops"),
        ],
    )
    def test_accepted_values(self, api: OleriaApi, data_type: str, value: Any) -> None:
        assert api.create(filterBy=[a_filter(data_type, "eq", [value])]).status_code == 201

    @pytest.mark.parametrize(
        ("data_type", "value", "reason"),
        [
            ("number", "forty-two", "is not a number"),
            ("number", True, "is not a number"),
            ("number", None, "is not a number"),
            ("number", "nan", "is not a finite number"),
            ("number", "inf", "is not a finite number"),
            ("boolean", "yes", "is not a boolean"),
            ("boolean", 1, "is not a boolean"),
            ("timestamp", "last tuesday", "is not an ISO-8601 timestamp"),
            ("timestamp", 1700000000, "is not an ISO-8601 timestamp"),
            ("string", "", "is not a non-empty string"),
            ("string", 5, "is not a non-empty string"),
            ("enum", None, "is not a non-empty string"),
        ],
    )
    def test_refused_values(self, api: OleriaApi, data_type: str, value: Any, reason: str) -> None:
        message = refusal(api.create(filterBy=[a_filter(data_type, "eq", [value])]))
        assert message.startswith("params.filterBy[0].values[0]: ")
        assert reason in message
        assert f"(dataType {data_type!r})" in message

    def test_a_bad_in_value_is_named_by_its_position(self, api: OleriaApi) -> None:
        entry = a_filter("number", "in", [1, 2, "three"])
        assert refusal(api.create(filterBy=[entry])).startswith("params.filterBy[0].values[2]: ")

    @pytest.mark.parametrize(
        ("data_type", "values"),
        [("number", [5, 1]), ("timestamp", ["2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"])],
    )
    def test_between_wants_the_lower_bound_first(
        self, api: OleriaApi, data_type: str, values: list[Any]
    ) -> None:
        message = refusal(api.create(filterBy=[a_filter(data_type, "between", values)]))
        assert message.startswith("params.filterBy[0].values: 'between' wants the lower bound")
        assert (
            api.create(filterBy=[a_filter(data_type, "between", values[::-1])]).status_code == 201
        )

    def test_matches_takes_a_regular_expression(self, api: OleriaApi) -> None:
        message = refusal(api.create(filterBy=[a_filter("string", "matches", ["(unclosed"])]))
        assert message.startswith("params.filterBy[0].values[0]: '(unclosed' is not a regular")
        assert api.create(filterBy=[a_filter("string", "matches", ["^Fin"])]).status_code == 201

    @pytest.mark.parametrize("duration", ["7d", "24h", "30m", "2w", "365d"])
    def test_last_takes_a_duration(self, api: OleriaApi, duration: str) -> None:
        entry = a_filter("timestamp", "last", [duration])
        assert api.create(filterBy=[entry]).status_code == 201

    @pytest.mark.parametrize("duration", ["7x", "0d", "-1h", "7", "d", "1.5h", "7 d", "7D", 7])
    def test_last_refuses_anything_else(self, api: OleriaApi, duration: Any) -> None:
        message = refusal(api.create(filterBy=[a_filter("timestamp", "last", [duration])]))
        assert message.startswith("params.filterBy[0].values[0]: ")
        assert "is not a duration" in message

    def test_last_units_are_a_setting(self, api: OleriaApi) -> None:
        api.configure(last_units="dh")
        assert api.create(filterBy=[a_filter("timestamp", "last", ["24h"])]).status_code == 201
        message = refusal(api.create(filterBy=[a_filter("timestamp", "last", ["30m"])]))
        assert "one of d, h" in message

    def test_naive_timestamps_are_utc_or_refused(self, api: OleriaApi) -> None:
        naive = a_filter("timestamp", "gte", ["2026-01-01T00:00:00"])
        assert api.create(filterBy=[naive]).status_code == 201
        api.configure(naive_timestamps=False)
        assert "has no UTC offset" in refusal(api.create(filterBy=[naive]))
        aware = a_filter("timestamp", "gte", ["2026-01-01T00:00:00Z"])
        assert api.create(filterBy=[aware]).status_code == 201

    def test_last_on_a_number_is_400(self, api: OleriaApi) -> None:
        """DOC: "`last` (timestamps only)"."""
        entry = {**a_filter("number", "eq"), "filterType": "last", "values": ["7d"]}
        assert refusal(api.create(filterBy=[entry])).startswith("params.filterBy[0].filterType: ")


# --------------------------------------------------------------------------- shapes


class TestShapes:
    def test_params_filter_by_and_sort_by_may_be_absent_or_null(self, api: OleriaApi) -> None:
        assert post(api, {"context": CONTEXT}).status_code == 201
        assert post(api, {"context": CONTEXT, "params": None}).status_code == 201
        body = {"context": CONTEXT, "params": {"filterBy": None, "sortBy": None}}
        assert post(api, body).status_code == 201

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ([CONTEXT], "body: expected a JSON object"),
            ({"context": CONTEXT, "params": []}, "params: expected an object"),
            ({"context": CONTEXT, "params": {"filterBy": {}}}, "params.filterBy: expected a list"),
            ({"context": CONTEXT, "params": {"sortBy": "x"}}, "params.sortBy: expected a list"),
            ({"context": CONTEXT, "params": {"filterBy": ["eq"]}}, "params.filterBy[0]: expected"),
        ],
    )
    def test_malformed_bodies(self, api: OleriaApi, body: Any, expected: str) -> None:
        assert refusal(post(api, body)).startswith(expected)

    def test_a_filter_needs_every_documented_key(self, api: OleriaApi) -> None:
        for key in ("dataType", "field", "filterType", "values"):
            entry = a_filter("string", "eq")
            del entry[key]
            message = refusal(api.create(filterBy=[entry]))
            assert message == f"params.filterBy[0].{key}: is required"

    def test_a_filter_with_another_key_is_refused(self, api: OleriaApi) -> None:
        entry = {**a_filter("string", "eq"), "operator": "eq"}
        message = refusal(api.create(filterBy=[entry]))
        assert message.startswith("params.filterBy[0].operator: unknown key")

    @pytest.mark.parametrize("field", ["", "  ", None, 3])
    def test_a_field_is_named(self, api: OleriaApi, field: Any) -> None:
        entry = {**a_filter("string", "eq"), "field": field}
        assert refusal(api.create(filterBy=[entry])).startswith("params.filterBy[0].field: ")


class TestSortBy:
    def test_documented_sorts_are_accepted(self, api: OleriaApi) -> None:
        sort_by = [
            {"field": "createdAt", "sortType": "desc"},
            {"field": "isAdmin", "sortType": "asc"},
        ]
        assert api.create(sortBy=sort_by).status_code == 201

    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            ({"field": "department", "sortType": "ASC"}, "params.sortBy[1].sortType: "),
            ({"field": "department", "sortType": "up"}, "params.sortBy[1].sortType: "),
            ({"field": "", "sortType": "asc"}, "params.sortBy[1].field: "),
            ({"sortType": "asc"}, "params.sortBy[1].field: is required"),
            ({"field": "department"}, "params.sortBy[1].sortType: is required"),
            (
                {"field": "department", "sortType": "asc", "nulls": "first"},
                "params.sortBy[1].nulls: unknown key",
            ),
            ("department", "params.sortBy[1]: expected an object"),
        ],
    )
    def test_invalid_sorts_are_400(self, api: OleriaApi, entry: Any, expected: str) -> None:
        sort_by = [{"field": "createdAt", "sortType": "asc"}, entry]
        assert refusal(api.create(sortBy=sort_by)).startswith(expected)


class TestStrictFields:
    def test_a_field_the_context_lacks_is_400_in_filters_and_sorts(self, api: OleriaApi) -> None:
        entry = {**a_filter("string", "eq"), "field": "noSuchField"}
        assert "unknown field 'noSuchField'" in refusal(api.create(filterBy=[entry]))
        sort = [{"field": "noSuchField", "sortType": "asc"}]
        assert refusal(api.create(sortBy=sort)).startswith("params.sortBy[0].field: unknown field")

    def test_strict_fields_off_accepts_them(self, api: OleriaApi) -> None:
        api.configure(strict_fields=False)
        entry = {**a_filter("string", "eq"), "field": "noSuchField"}
        assert (
            api.create(filterBy=[entry], sortBy=[{"field": "nope", "sortType": "asc"}]).status_code
            == 201
        )
