from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.vendors.maxsight.query import (
    METADATA_KEYS,
    PDF_EVENT_LIMIT,
    AuditExportQuery,
    format_api_timestamp,
    parse_api_timestamp,
)
from tests.simulators.test_maxsight import METADATA_KEYS as DOCUMENTED_METADATA_KEYS

UTC = dt.UTC
START = dt.datetime(2026, 11, 1, tzinfo=UTC)
END = dt.datetime(2026, 11, 2, tzinfo=UTC)


def error_of(**fields: Any) -> ExportValidationError:
    with pytest.raises(ExportValidationError) as info:
        AuditExportQuery(**fields)
    return info.value


def test_documented_constants() -> None:
    assert PDF_EVENT_LIMIT == 5000
    assert METADATA_KEYS == DOCUMENTED_METADATA_KEYS  # the client's against the doc's quote


class TestTimestamps:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (dt.datetime(2026, 11, 21, 23, 0, tzinfo=UTC), "2026-11-21T23:00:00.000Z"),
            (dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
            (
                dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "2026-11-21T23:00:00.000Z",
            ),
            (dt.datetime(999, 1, 1, tzinfo=UTC), "0999-01-01T00:00:00.000Z"),
        ],
    )
    def test_format(self, value: dt.datetime, text: str) -> None:
        assert format_api_timestamp(value) == text

    def test_format_refuses_naive(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            format_api_timestamp(dt.datetime(2026, 1, 1))

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("2026-11-21T23:00:00.000Z", dt.datetime(2026, 11, 21, 23, tzinfo=UTC)),
            ("2026-11-21T23:00:00Z", dt.datetime(2026, 11, 21, 23, tzinfo=UTC)),
            ("2026-11-22T01:00:00+02:00", dt.datetime(2026, 11, 21, 23, tzinfo=UTC)),
            ("2026-11-21T23:00:00.5", dt.datetime(2026, 11, 21, 23, 0, 0, 500000, tzinfo=UTC)),
            ("2026-11-21", dt.datetime(2026, 11, 21, tzinfo=UTC)),
        ],
    )
    def test_parse(self, text: str, value: dt.datetime) -> None:
        parsed = parse_api_timestamp(text)
        assert parsed == value
        assert parsed.utcoffset() == dt.timedelta(0)

    @pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "1700000000"])
    def test_parse_refuses(self, text: str) -> None:
        with pytest.raises(ValueError, match="is not an ISO-8601 timestamp"):
            parse_api_timestamp(text)

    @settings(max_examples=150, deadline=None)
    @given(st.datetimes(timezones=st.just(UTC)))
    def test_round_trip_at_millisecond_precision(self, value: dt.datetime) -> None:
        expected = value.replace(microsecond=value.microsecond // 1000 * 1000)
        assert parse_api_timestamp(format_api_timestamp(value)) == expected


class TestValidation:
    def test_defaults(self) -> None:
        query = AuditExportQuery()
        assert (query.file_type, query.locale, query.timezone) == ("csv", "en", None)
        assert query.to_params() == [("file_type", "csv"), ("locale", "en")]

    def test_end_before_start_names_both(self) -> None:
        assert str(error_of(range_start=END, range_end=START)) == (
            "range_end: range_end 2026-11-01T00:00:00.000Z is before "
            "range_start 2026-11-02T00:00:00.000Z"
        )

    def test_equal_bounds_are_fine_both_inclusive(self) -> None:
        AuditExportQuery(range_start=START, range_end=START)

    @pytest.mark.parametrize("name", ["range_start", "range_end"])
    def test_naive_datetimes_refused(self, name: str) -> None:
        assert str(error_of(**{name: dt.datetime(2026, 1, 1)})) == (
            f"{name}: 2026-01-01T00:00:00 is naive; give a time zone (UTC)"
        )

    def test_range_must_be_a_datetime(self) -> None:
        assert (
            str(error_of(range_start="2026-01-01")) == "range_start: '2026-01-01' is not a datetime"
        )

    def test_ranges_kept_in_utc_to_the_millisecond(self) -> None:
        plus2 = dt.timezone(dt.timedelta(hours=2))
        query = AuditExportQuery(range_start=dt.datetime(2026, 1, 1, 2, 0, 0, 123999, tzinfo=plus2))
        assert query.range_start == dt.datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
        assert query.range_start is not None
        assert query.range_start.tzinfo is UTC

    def test_unknown_metadata_key_lists_allowed(self) -> None:
        assert str(error_of(metadata={"entity": "1"})) == (
            f"metadata[entity]: unknown key 'entity' (allowed: {', '.join(METADATA_KEYS)})"
        )

    @pytest.mark.parametrize("value", ["", 5, None])
    def test_metadata_values(self, value: Any) -> None:
        assert error_of(metadata={"tag": value}).field == "metadata[tag]"

    @pytest.mark.parametrize("name", ["auditee_id", "event_type", "sub_type", "system_source"])
    def test_arrays(self, name: str) -> None:
        fields: dict[str, Any] = {name: ["a", "b"]}  # lists are accepted and kept as tuples
        query = AuditExportQuery(**fields)
        assert getattr(query, name) == ("a", "b")
        assert str(error_of(**{name: ["a", ""]})) == f"{name}[1]: '' is not a non-empty string"
        assert error_of(**{name: "ab"}).field == name

    @pytest.mark.parametrize("file_type", ["xlsx", "", None])
    def test_file_type(self, file_type: Any) -> None:
        assert str(error_of(file_type=file_type)) == (
            f"file_type: {file_type!r} is not a file type (allowed: csv, pdf)"
        )

    def test_file_type_case(self) -> None:
        query = AuditExportQuery(file_type="PDF")
        assert query.file_type == "pdf"
        assert ("file_type", "pdf") in query.to_params()

    @pytest.mark.parametrize("locale", ["en", "en-GB", "pt_BR", "fil"])
    def test_locales(self, locale: str) -> None:
        AuditExportQuery(locale=locale)

    @pytest.mark.parametrize("locale", ["", "e", "english language", "en-", 5])
    def test_bad_locale(self, locale: Any) -> None:
        assert error_of(locale=locale).field == "locale"

    @pytest.mark.parametrize("zone", ["UTC", "Europe/London", "America/Argentina/Buenos_Aires"])
    def test_iana_zones(self, zone: str) -> None:
        AuditExportQuery(timezone=zone)

    @pytest.mark.parametrize(
        "zone", ["Mars/Olympus", "utc", "America", "Europe/", "../etc/passwd", "/etc/localtime", ""]
    )
    def test_bad_zone(self, zone: str) -> None:
        assert error_of(timezone=zone).field == "timezone"

    def test_hashable_and_comparable(self) -> None:
        one = AuditExportQuery(metadata={"tag": "x", "task_id": "1"}, event_type=("a",))
        two = AuditExportQuery(metadata={"task_id": "1", "tag": "x"}, event_type=("a",))
        assert one == two
        assert hash(one) == hash(two)


class TestParams:
    QUERY = AuditExportQuery(
        range_start=START,
        range_end=END,
        auditee_id=("p1",),
        event_type=("LOGIN", "EXPORT"),
        metadata={"workflow_step": "review", "entity_id": "e9"},
        file_type="pdf",
        locale="en-GB",
        timezone="Europe/London",
    )

    def test_arrays_go_as_repeated_keys_the_documented_form(self) -> None:
        assert self.QUERY.to_params() == [
            ("range_start", "2026-11-01T00:00:00.000Z"),
            ("range_end", "2026-11-02T00:00:00.000999Z"),  # through its whole millisecond
            ("auditee_id", "p1"),
            ("event_type", "LOGIN"),
            ("event_type", "EXPORT"),
            ("metadata[entity_id]", "e9"),
            ("metadata[workflow_step]", "review"),
            ("file_type", "pdf"),
            ("locale", "en-GB"),
            ("timezone", "Europe/London"),
        ]

    def test_survives_a_real_query_string(self) -> None:
        pairs = self.QUERY.to_params()
        assert parse_qsl(urlencode(pairs)) == pairs


TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
STAMPS = st.datetimes(timezones=st.just(UTC))


@st.composite
def queries(draw: st.DrawFn) -> AuditExportQuery:
    start, end = sorted([draw(STAMPS), draw(STAMPS)])
    return AuditExportQuery(
        range_start=draw(st.none() | st.just(start)),
        range_end=draw(st.none() | st.just(end)),
        auditee_id=tuple(draw(st.lists(TEXT, max_size=3))),
        event_type=tuple(draw(st.lists(TEXT, max_size=3))),
        sub_type=tuple(draw(st.lists(TEXT, max_size=3))),
        system_source=tuple(draw(st.lists(TEXT, max_size=3))),
        metadata=draw(st.dictionaries(st.sampled_from(METADATA_KEYS), TEXT, max_size=3)),
        file_type=draw(st.sampled_from(["csv", "pdf"])),
        locale=draw(st.sampled_from(["en", "fr", "en-GB"])),
        timezone=draw(st.none() | st.sampled_from(["UTC", "Europe/Paris", "Asia/Tokyo"])),
    )


@settings(max_examples=150, deadline=None)
@given(queries())
def test_params_survive_url_encoding(query: AuditExportQuery) -> None:
    pairs = query.to_params()
    assert parse_qsl(urlencode(pairs)) == pairs
    assert not any(key.endswith("[]") for key, _ in pairs)
