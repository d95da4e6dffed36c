from __future__ import annotations

from typing import Any

import pytest

from compliance_exports.core.errors import ExportValidationError, UnknownStatusError
from compliance_exports.vendors.veza.scim import Compare
from compliance_exports.vendors.veza.validation import (
    CONTENT_TYPES,
    DECISIONS,
    FILE_EXTENSIONS,
    FORMAT_CSV,
    FORMAT_XLSX,
    TITLE_MAX,
    parse_order_by,
    validate_access_review_export,
    validate_filter,
    validate_mutable_filter,
)


def error_of(**request: Any) -> ExportValidationError:
    request = {"format": FORMAT_CSV, "certification_id": "cert-1", **request}
    with pytest.raises(ExportValidationError) as info:
        validate_access_review_export(**request)
    return info.value


def test_constants_are_the_documented_ones() -> None:
    assert (FORMAT_CSV, FORMAT_XLSX, TITLE_MAX) == (0, 6, 30)
    assert FILE_EXTENSIONS == {0: "csv", 6: "xlsx"}
    assert CONTENT_TYPES[6] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class TestFullRequest:
    def test_everything_valid(self) -> None:
        validate_access_review_export(
            format=FORMAT_XLSX,
            certification_id="cert-2",
            previous_certification_id="cert-1",
            title="Q4 review",
            filter='source.department eq "Finance" and destination.type sw "aws"',
            mutable_filter='decision eq "RESULT_DECISION_REJECTED" or notes co "vpn"',
            order_by="source.name ASC, destination.name desc",
        )

    def test_minimal_csv(self) -> None:
        validate_access_review_export(format=FORMAT_CSV, certification_id="cert-1")


class TestFormat:
    @pytest.mark.parametrize("fmt", [1, 2, 5, 7, -1, "0", None, True, False, 6.5])
    def test_only_csv_and_xlsx(self, fmt: Any) -> None:
        error = error_of(format=fmt)
        assert str(error) == f"format: {fmt!r} is not supported (allowed: 0 = CSV, 6 = XLSX)"


class TestIds:
    @pytest.mark.parametrize("value", [None, "", "   ", 42])
    def test_certification_id_required(self, value: Any) -> None:
        assert str(error_of(certification_id=value)) == (
            f"certification_id: {value!r} is not an id (a non-empty string)"
        )

    def test_previous_must_be_an_id(self) -> None:
        assert error_of(previous_certification_id="").field == "previous_certification_id"

    def test_diff_against_itself_is_refused(self) -> None:
        assert str(error_of(previous_certification_id="cert-1")) == (
            "previous_certification_id: a diff export needs a different certification "
            "than certification_id"
        )


class TestTitle:
    def test_only_with_xlsx(self) -> None:
        assert str(error_of(title="Report")) == "title: only allowed with format 6 (XLSX), not 0"

    def test_thirty_characters_is_the_limit(self) -> None:
        validate_access_review_export(format=6, certification_id="c", title="x" * TITLE_MAX)
        assert str(error_of(format=6, title="x" * 31)) == (
            "title: 31 characters is longer than the maximum of 30"
        )

    @pytest.mark.parametrize("title", ["", "  ", 5])
    def test_must_be_text(self, title: Any) -> None:
        assert error_of(format=6, title=title).field == "title"


class TestFilter:
    @pytest.mark.parametrize(
        "text",
        [
            'source.name eq "a"',
            "destination.datasource_id pr",
            'Source.Email ew "@acme.com" or not (destination.type eq "x")',
        ],
    )
    def test_source_and_destination_fields(self, text: str) -> None:
        validate_filter(text)

    @pytest.mark.parametrize(
        ("text", "attribute"),
        [
            ('decision eq "RESULT_DECISION_NONE"', "decision"),
            ('source.name eq "a" and notes pr', "notes"),
            ("sourcename pr", "sourcename"),
        ],
    )
    def test_other_fields_are_refused(self, text: str, attribute: str) -> None:
        assert str(error_of(filter=text)) == (
            f"filter: attribute {attribute!r} is not filterable here "
            "(use fields under source. or destination.)"
        )

    def test_syntax_error_keeps_position(self) -> None:
        error = error_of(filter="source.name eq")
        assert error.field == "filter"
        assert "at position 14: expected a value" in error.message

    @pytest.mark.parametrize("text", ["", "  ", 5])
    def test_must_be_text(self, text: Any) -> None:
        assert error_of(filter=text).field == "filter"


class TestMutableFilter:
    @pytest.mark.parametrize("decision", DECISIONS)
    def test_every_decision(self, decision: str) -> None:
        node = validate_mutable_filter(f'decision eq "{decision}"')
        assert node == Compare("decision", "eq", decision)

    def test_decision_words_are_case_insensitive(self) -> None:
        validate_mutable_filter('decision ne "result_decision_fixed"')

    @pytest.mark.parametrize(
        "text",
        ['notes co "ok"', "signed_off_state eq true", 'reviewers eq "bob"', "decision pr"],
    )
    def test_mutable_fields(self, text: str) -> None:
        validate_mutable_filter(text)

    def test_other_fields_are_refused(self) -> None:
        assert str(error_of(mutable_filter='source.name eq "a"')) == (
            "mutable_filter: attribute 'source.name' is not allowed "
            "(allowed: decision, notes, signed_off_state, reviewers)"
        )

    @pytest.mark.parametrize("value", ['"ACCEPTED"', '"RESULT_DECISION_MAYBE"', "1", "null"])
    def test_unknown_decision_is_refused(self, value: str) -> None:
        error = error_of(mutable_filter=f"decision eq {value}")
        assert error.field == "mutable_filter"
        assert error.message.endswith(f"(allowed: {', '.join(DECISIONS)})")


class TestOrderBy:
    @pytest.mark.parametrize(
        ("text", "keys"),
        [
            ("source.name ASC", [("source.name", False)]),
            ("source.name", [("source.name", False)]),
            ("updated_at desc", [("updated_at", True)]),
            ("a DESC, b.c asc ,d", [("a", True), ("b.c", False), ("d", False)]),
        ],
    )
    def test_parses(self, text: str, keys: list[tuple[str, bool]]) -> None:
        assert parse_order_by(text) == keys

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("source.name UP", "order_by: key 1 direction 'UP' is not ASC or DESC"),
            ("a ASC,", "order_by: key 2 '' is not '<field> [ASC|DESC]'"),
            ("a ASC extra", "order_by: key 1 'a ASC extra' is not '<field> [ASC|DESC]'"),
            ("", "order_by: '' is not an order (e.g. 'source.name ASC')"),
        ],
    )
    def test_invalid(self, text: str, message: str) -> None:
        assert str(error_of(order_by=text)) == message


class TestStatus:
    """Veza's status words are declared once, in the hook's status map."""

    WORDS = ("CREATED", "PROCESSING", "FINISHED", "FAILED", "CANCELLED", "EXPIRED")

    @pytest.mark.parametrize("status", WORDS)
    @pytest.mark.parametrize("spelling", ["{s}", "EXPORT_STATUS_{s}", "{lower}", " {s} "])
    def test_tolerated_spellings(self, status: str, spelling: str) -> None:
        from compliance_exports.vendors.veza.hook import VezaHook

        phase = VezaHook.status_map.phase_of(spelling.format(s=status, lower=status.lower()))
        assert phase is VezaHook.status_map.phase_of(status)

    @pytest.mark.parametrize("raw", ["RUNNING", "EXPORT_STATUS_", "", None, 3])
    def test_unknown_is_an_error(self, raw: Any) -> None:
        from compliance_exports.vendors.veza.hook import VezaHook

        with pytest.raises(UnknownStatusError) as info:
            VezaHook.status_map.phase_of(raw)
        assert info.value.vendor == "veza"
        assert set(info.value.known) == set(self.WORDS)

    def test_terminal_statuses(self) -> None:
        from compliance_exports.vendors.veza.hook import VezaHook

        terminal = {w for w in self.WORDS if VezaHook.status_map.phase_of(w).is_terminal}
        assert terminal == {"FINISHED", "FAILED", "CANCELLED", "EXPIRED"}
