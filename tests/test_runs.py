from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.runs import (
    ExportSlice,
    NothingToExport,
    RunRequest,
    SlicePolicy,
    day_bounds,
    plan_slices,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
NIGHTLY = (dt.datetime(2026, 11, 20, tzinfo=UTC), dt.datetime(2026, 11, 21, tzinfo=UTC))
WINDOWED = SlicePolicy(
    "events", snapshot=False, timezone="UTC", snapshot_grace=dt.timedelta(hours=36)
)
SNAPSHOT = SlicePolicy(
    "inventory", snapshot=True, timezone="UTC", snapshot_grace=dt.timedelta(hours=36)
)
KNOWN = ["events", "inventory"]


class TestRunRequest:
    def test_defaults(self) -> None:
        assert RunRequest.from_params({}, KNOWN) == RunRequest()

    def test_range_and_subset(self) -> None:
        req = RunRequest.from_params(
            {"exports": ["events"], "range_start": "2026-11-01", "range_end": "2026-11-03"}, KNOWN
        )
        assert req.exports == ("events",)
        assert (req.range_start, req.range_end) == (dt.date(2026, 11, 1), dt.date(2026, 11, 3))

    @pytest.mark.parametrize(
        ("params", "field", "text"),
        [
            ({"range_start": "2026-11-05", "range_end": "2026-11-01"}, "params.range_end",
             "2026-11-01 is before range_start 2026-11-05"),
            ({"range_start": "2026-11-05"}, "params.range_end", "set both"),
            ({"range_end": "2026-11-05"}, "params.range_start", "set both"),
            ({"range_start": "yesterday", "range_end": "2026-11-05"}, "params.range_start",
             "not a YYYY-MM-DD date"),
            ({"exports": ["nope"]}, "params.exports", "unknown export(s) ['nope']"),
        ],
    )  # fmt: skip
    def test_invalid_params_name_the_field(self, params: dict, field: str, text: str) -> None:
        with pytest.raises(ExportValidationError) as err:
            RunRequest.from_params(params, KNOWN)
        assert err.value.field == field
        assert text in str(err.value)


class TestPlanSlices:
    def test_nightly_windowed_is_the_interval(self) -> None:
        [s] = plan_slices(WINDOWED, RunRequest(), NIGHTLY, NOW)
        assert (s.day, s.start, s.end, s.snapshot) == (dt.date(2026, 11, 20), *NIGHTLY, False)

    def test_range_override_gives_one_slice_per_day(self) -> None:
        req = RunRequest(range_start=dt.date(2026, 10, 30), range_end=dt.date(2026, 11, 2))
        slices = plan_slices(WINDOWED, req, NIGHTLY, NOW)
        assert [s.day.isoformat() for s in slices] == [
            "2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"
        ]  # fmt: skip
        assert all(b.start == a.end for a, b in itertools.pairwise(slices))

    def test_not_selected_is_skipped(self) -> None:
        with pytest.raises(NothingToExport, match="not selected"):
            plan_slices(WINDOWED, RunRequest(exports=("inventory",)), NIGHTLY, NOW)

    def test_snapshot_for_the_interval_that_just_ended(self) -> None:
        [s] = plan_slices(SNAPSHOT, RunRequest(), NIGHTLY, NOW)
        assert s.snapshot
        assert s.day == dt.date(2026, 11, 20)
        assert s.extracted_at == NOW

    def test_backfilled_snapshot_is_skipped_not_mislabelled(self) -> None:
        old = (dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 10, 2, tzinfo=UTC))
        with pytest.raises(NothingToExport, match="cannot be taken for 2026-10-01"):
            plan_slices(SNAPSHOT, RunRequest(), old, NOW)

    def test_manual_run_without_interval_takes_last_complete_day(self) -> None:
        [s] = plan_slices(WINDOWED, RunRequest(), None, NOW)
        assert s.day == dt.date(2026, 11, 20)

    def test_timezone_day_bounds_follow_dst(self) -> None:
        policy = SlicePolicy("e", False, "Europe/Berlin", dt.timedelta(hours=36))
        req = RunRequest(range_start=dt.date(2026, 10, 25), range_end=dt.date(2026, 10, 25))
        [s] = plan_slices(policy, req, None, NOW)
        assert s.end - s.start == dt.timedelta(hours=25)  # the day DST ends

    def test_slice_round_trips_through_json(self) -> None:
        [s] = plan_slices(SNAPSHOT, RunRequest(), NIGHTLY, NOW)
        assert ExportSlice.from_dict(s.to_dict()) == s

    def test_day_bounds_are_utc(self) -> None:
        start, end = day_bounds(dt.date(2026, 1, 1), ZoneInfo("UTC"))
        assert start.tzinfo is not None
        assert end - start == dt.timedelta(days=1)
