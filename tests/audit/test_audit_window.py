from __future__ import annotations

import datetime as dt
import json

import pytest

from compliance_exports.vendors.maxsight.audit.window import (
    Window,
    format_ms,
    parse_ms,
    to_epoch_ms,
)
from compliance_exports.vendors.maxsight.query import AuditExportQuery

DAY = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
DAY_MS = to_epoch_ms(DAY)


class TestTimestamps:
    def test_aware_datetime_becomes_epoch_ms_truncated(self) -> None:
        moment = dt.datetime(
            2026, 11, 21, 1, 0, 0, 123999, tzinfo=dt.timezone(dt.timedelta(hours=1))
        )
        assert to_epoch_ms(moment) == DAY_MS + 123

    def test_before_the_epoch_truncates_towards_the_past(self) -> None:
        moment = dt.datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=dt.UTC)
        assert to_epoch_ms(moment) == -1

    def test_int_passes_through(self) -> None:
        assert to_epoch_ms(DAY_MS) == DAY_MS

    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="range_start 2026-11-21T00:00:00 has no timezone"):
            to_epoch_ms(dt.datetime(2026, 11, 21), name="range_start")

    @pytest.mark.parametrize("value", [True, 1.5, "2026-11-21"])
    def test_other_types_are_refused(self, value: object) -> None:
        with pytest.raises(TypeError, match="epoch milliseconds"):
            to_epoch_ms(value)  # type: ignore[arg-type]

    def test_format_and_parse_at_millisecond_precision(self) -> None:
        assert format_ms(DAY_MS + 7) == "2026-11-21T00:00:00.007Z"
        assert parse_ms("2026-11-21T00:00:00.007Z") == DAY_MS + 7
        assert parse_ms("2026-11-21T01:00:00.007+01:00") == DAY_MS + 7


class TestWindow:
    def test_dict_round_trip_is_small_json(self) -> None:
        window = Window(DAY_MS, DAY_MS, {"event_type": ("b", "a")}, expected_events=4200)
        data = json.loads(json.dumps(window.to_dict()))
        assert data == {
            "start": "2026-11-21T00:00:00.000Z",
            "end": "2026-11-21T00:00:00.000Z",
            "filters": {"event_type": ["a", "b"]},
            "expected_events": 4200,
        }
        assert Window.from_dict(data) == window
        assert Window.from_dict(data).to_dict() == data

    def test_round_trip_without_filters_or_count(self) -> None:
        window = Window(DAY_MS, DAY_MS + 86_399_999)
        assert Window.from_dict(window.to_dict()) == window

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"start": "2026-11-21T00:00:00.000Z"}, r"missing keys \['end'\]"),
            (
                {"start": "2026-11-21T00:00:00Z", "end": "2026-11-21T00:00:00Z", "x": 1},
                r"unknown keys \['x'\]",
            ),
            ({"start": "yesterday", "end": "2026-11-21T00:00:00Z"}, "'yesterday' is not an ISO"),
            (
                {"start": "2026-11-21T00:00:00Z", "end": "2026-11-21T00:00:00Z", "filters": []},
                "filters must be an object",
            ),
            (
                {
                    "start": "2026-11-21T00:00:00Z",
                    "end": "2026-11-21T00:00:00Z",
                    "expected_events": "9",
                },
                "expected_events must be an integer",
            ),
        ],
    )
    def test_from_dict_names_the_problem(self, data: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            Window.from_dict(data)

    def test_start_after_end_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"starts at 2026-11-21T00:00:00.001Z, after its end"):
            Window(DAY_MS + 1, DAY_MS)

    @pytest.mark.parametrize(
        ("filters", "message"),
        [
            ({"auditee_id": ("x",)}, "unknown window filter"),
            ({"event_type": ()}, "one or more non-blank strings"),
            ({"event_type": ("a", " ")}, "one or more non-blank strings"),
            ({"event_type": ("a", "a")}, "repeats a value"),
            ({"event_type": 5}, "needs a list of strings, got 5"),
            ({"event_type": "login"}, "needs a list of strings, got 'login'"),
        ],
    )
    def test_bad_filters_are_refused(
        self, filters: dict[str, tuple[str, ...]], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            Window(DAY_MS, DAY_MS, filters)

    def test_windows_are_hashable_values(self) -> None:
        one = Window(DAY_MS, DAY_MS, {"sub_type": ["y", "x"]}, 3)
        same = Window(DAY_MS, DAY_MS, {"sub_type": ("x", "y")}, 3)
        assert one == same
        assert len({one, same}) == 1

    def test_pdf_query_carries_inclusive_bounds_and_filters(self) -> None:
        window = Window(DAY_MS, DAY_MS + 999, {"system_source": ("web", "api")})
        assert window.pdf_query(AuditExportQuery()).to_params() == [
            ("range_start", "2026-11-21T00:00:00.000Z"),
            ("range_end", "2026-11-21T00:00:00.999999Z"),  # the last microsecond of its ms
            ("system_source", "api"),  # repeated keys (DOC), never system_source[]=
            ("system_source", "web"),
            ("file_type", "pdf"),
            ("locale", "en"),
        ]

    def test_pdf_query_narrows_the_export_query(self) -> None:
        base = AuditExportQuery(auditee_id=("p-1",), event_type=("a", "b", "c"), locale="en-GB")
        window = Window(DAY_MS, DAY_MS + 5, {"event_type": ("a", "c")})
        query = window.pdf_query(base)
        assert query.to_params() == [
            ("range_start", "2026-11-21T00:00:00.000Z"),
            ("range_end", "2026-11-21T00:00:00.005999Z"),
            ("auditee_id", "p-1"),
            ("event_type", "a"),
            ("event_type", "c"),
            ("file_type", "pdf"),
            ("locale", "en-GB"),
        ]

    def test_contains_checks_time_and_every_filter(self) -> None:
        window = Window(DAY_MS, DAY_MS + 10, {"event_type": ("a",), "sub_type": ("x",)})
        assert window.contains(DAY_MS + 10, {"event_type": "a", "sub_type": "x"})
        assert not window.contains(DAY_MS + 11, {"event_type": "a", "sub_type": "x"})
        assert not window.contains(DAY_MS, {"event_type": "a", "sub_type": None})
        assert Window(DAY_MS, DAY_MS).contains(DAY_MS)

    def test_str_names_the_range_and_filters(self) -> None:
        window = Window(DAY_MS, DAY_MS, {"event_type": ("a", "b")})
        assert str(window) == "2026-11-21T00:00:00.000Z..2026-11-21T00:00:00.000Z event_type=a,b"
