"""Declared schemas and the text -> type rules, including property tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance_exports.landing.errors import LandingError
from compliance_exports.landing.manifest import redact
from compliance_exports.landing.schema import ColumnType, DatasetSchema, resolve
from compliance_exports.landing.sources import RawFormat, detect_format
from compliance_exports.landing.values import (
    bad_positions,
    first_bad_position,
    has_zone,
    to_typed,
    to_utc_timestamp,
)

UTC = dt.UTC


def text(values: Sequence[str | None]) -> pa.Array:
    return pa.array(values, pa.string())


class TestDatasetSchema:
    def test_from_mapping(self) -> None:
        schema = DatasetSchema.from_mapping({"id": "string", "n": "INT64", "amt": "decimal(18, 2)"})
        assert schema.to_mapping() == {"id": "string", "n": "int64", "amt": "decimal(18,2)"}
        assert schema.columns[2][1].arrow_type == pa.decimal128(18, 2)

    @pytest.mark.parametrize(
        ("mapping", "error", "message"),
        [
            (
                {"id": "integer"},
                ValueError,
                r"column 'id': unknown column type 'integer' \(known: ",
            ),
            ({"id": 5}, TypeError, "column 'id': a column type is a string"),
            ({"x": "decimal(3,5)"}, ValueError, "needs 1 <= precision <= 38"),
            ({"": "string"}, ValueError, "empty"),
        ],
    )
    def test_bad_declarations(self, mapping: dict, error: type, message: str) -> None:
        with pytest.raises(error, match=message):
            DatasetSchema.from_mapping(mapping)

    def test_not_a_mapping(self) -> None:
        with pytest.raises(TypeError, match="maps column names to types"):
            DatasetSchema.from_mapping(["id"])  # type: ignore[arg-type]

    def test_resolve_orders_declared_then_new_then_extras(self) -> None:
        schema = DatasetSchema.from_mapping({"b": "int64", "gone": "date", "a": "string"})
        resolved = resolve(schema, ["a", "new", "b"], extra=["_sheet"])
        assert [name for name, _ in resolved.columns] == ["b", "gone", "a", "new", "_sheet"]
        assert resolved.drift() == {"added": ["new"], "missing": ["gone"]}
        assert resolved.describe()[3] == {"name": "new", "type": "string", "declared": False}

    @given(st.sampled_from(["string", "int64", "float64", "bool", "timestamp", "date"]))
    def test_type_names_round_trip(self, name: str) -> None:
        assert str(ColumnType.parse(name)) == name


class TestValues:
    def test_int_with_spaces_and_blanks(self) -> None:
        result = to_typed(text([" 7 ", "", None, "0042"]), ColumnType("int64"))
        assert result.to_pylist() == [7, None, None, 42]

    def test_bool_spellings(self) -> None:
        words = ["true", "TRUE", "False", "1", "0", "yes", "No", "t", "F", "y", "n", None]
        result = to_typed(text(words), ColumnType("bool"))
        assert result.to_pylist() == [
            True, True, False, True, False, True, False, True, False, True, False, None,
        ]  # fmt: skip

    def test_bool_rejects_other_words(self) -> None:
        assert first_bad_position(text(["true", "maybe"]), ColumnType("bool")) == 1

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2026-11-20T10:00:00Z", dt.datetime(2026, 11, 20, 10, tzinfo=UTC)),
            ("2026-11-20T10:00:00.123Z", dt.datetime(2026, 11, 20, 10, 0, 0, 123000, tzinfo=UTC)),
            ("2026-11-20 10:00:00+02:00", dt.datetime(2026, 11, 20, 8, tzinfo=UTC)),
            ("2026-11-20T10:00:00.5-0500", dt.datetime(2026, 11, 20, 15, 0, 0, 500000, tzinfo=UTC)),
            ("2026-11-20T10:00:00", dt.datetime(2026, 11, 20, 10, tzinfo=UTC)),
            ("2026-11-20 10:00:00.250", dt.datetime(2026, 11, 20, 10, 0, 0, 250000, tzinfo=UTC)),
            ("2026-11-20", dt.datetime(2026, 11, 20, tzinfo=UTC)),
        ],
    )
    def test_timestamp_formats(self, value: str, expected: dt.datetime) -> None:
        assert to_typed(text([value]), ColumnType("timestamp")).to_pylist() == [expected]
        mixed = to_utc_timestamp(text([value, "2026-01-01T00:00:00Z", "2026-01-01", None]))
        assert mixed.to_pylist()[0] == expected

    def test_zone_detection(self) -> None:
        values = ["2026-11-20", "2026-11-20T10:00Z", "x+01:00", "x-0130", "2026-11-20 10:00", None]
        assert has_zone(text(values)).to_pylist() == [False, True, True, True, False, None]

    def test_decimal_and_date(self) -> None:
        assert to_typed(text(["1.50", "-2"]), ColumnType("decimal", 5, 2)).to_pylist() == [
            Decimal("1.50"),
            Decimal("-2.00"),
        ]
        assert first_bad_position(text(["1.234"]), ColumnType("decimal", 5, 2)) == 0
        assert to_typed(text(["2024-02-29"]), ColumnType("date")).to_pylist() == [
            dt.date(2024, 2, 29)
        ]

    def test_a_date_may_carry_a_midnight_time_and_nothing_else(self) -> None:
        """A spreadsheet's date cell reads as ``2024-02-29 00:00:00``."""
        midnight = ["2024-02-29 00:00:00", "2024-02-29T00:00:00.000", "2024-03-01", None]
        assert to_typed(text(midnight), ColumnType("date")).to_pylist() == [
            dt.date(2024, 2, 29),
            dt.date(2024, 2, 29),
            dt.date(2024, 3, 1),
            None,
        ]
        later = ["2024-02-29", "2024-02-29 00:00:01", "2024-02-29 00:00:00Z"]
        assert list(bad_positions(text(later), ColumnType("date"))) == [1, 2]

    def test_strings_are_untouched(self) -> None:
        values = ["  007 ", "", None]
        assert to_typed(text(values), ColumnType("string")).to_pylist() == values

    @given(
        st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1).map(str), st.just("x")), max_size=60)
    )
    def test_bad_positions_finds_exactly_the_bad_values(self, values: list[str]) -> None:
        expected = [i for i, v in enumerate(values) if v == "x"]
        assert list(bad_positions(text(list(values)), ColumnType("int64"))) == expected

    @given(st.lists(st.integers(0, 10**9), max_size=40), st.integers(0, 9))
    def test_leading_zeros_survive_as_strings(self, numbers: list[int], width: int) -> None:
        values = [f"{n:0{width}d}" for n in numbers]
        assert to_typed(text(values), ColumnType("string")).to_pylist() == values
        assert to_typed(text(values), ColumnType("int64")).to_pylist() == numbers


class TestFormats:
    @pytest.mark.parametrize(
        ("filename", "content_type", "expected"),
        [
            ("a.CSV", None, RawFormat.CSV),
            ("report", "application/csv", RawFormat.CSV),
            ("review.xlsx", None, RawFormat.XLSX),
            ("search.zip", None, RawFormat.ZIP),
            ("audit", "application/pdf; charset=binary", RawFormat.PDF),
        ],
    )
    def test_detect_format(
        self, filename: str, content_type: str | None, expected: RawFormat
    ) -> None:
        assert detect_format(filename, content_type) is expected

    def test_unknown_format(self) -> None:
        with pytest.raises(LandingError, match="cannot tell the format"):
            detect_format("data.bin", "application/octet-stream")


def test_redact_hides_secret_looking_keys() -> None:
    request = {
        "context": "x",
        "auth": {"client_secret": "s", "apiKey": "k"},
        "items": [{"token": 1}],
    }
    assert redact(request) == {
        "context": "x",
        "auth": {"client_secret": "***", "apiKey": "***"},
        "items": [{"token": "***"}],
    }
