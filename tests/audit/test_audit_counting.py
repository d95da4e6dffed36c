from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_exports.vendors.maxsight.audit.counting import (
    CountedEvents,
    CountingCsvError,
    counting_query,
    parse_event_timestamp,
    read_counting_csv,
)
from compliance_exports.vendors.maxsight.audit.planner import plan_pdf_windows
from compliance_exports.vendors.maxsight.audit.window import to_epoch_ms
from compliance_exports.vendors.maxsight.query import AuditExportQuery

DAY_MS = to_epoch_ms(dt.datetime(2026, 11, 21, tzinfo=dt.UTC))

AWKWARD = (
    "\ufeffevent_id,Timestamp,auditee_name,event_type,sub_type,system_source,description\r\n"
    '1,2026-11-21T00:00:00.001Z,"Doe, Jane",login,,api,"said ""hi"""\r\n'
    '2,"2026-11-21T01:00:00.002+01:00",Zoë,"grant, role","","ui","two\r\nlines, quoted"\r\n'
    "3,2026-11-21 00:00:00.003,Bob,logout, mfa ,job,\r\n"
    "\r\n"
    "4,2026-11-20T19:00:00.004123-05:00,Ann,login\r\n"
)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        yield b""  # empty chunks must not end the stream


class TestReadCountingCsv:
    @pytest.mark.parametrize("chunk_size", [1, 2, 7, 4096])
    def test_awkward_quoting_in_chunks(self, chunk_size: int) -> None:
        counted = read_counting_csv(chunks(AWKWARD.encode(), chunk_size))
        assert list(counted.timestamps_ms) == [DAY_MS + 1, DAY_MS + 2, DAY_MS + 3, DAY_MS + 4]
        assert counted.attributes == {
            "event_type": ["login", "grant, role", "logout", "login"],
            "sub_type": [None, None, " mfa ", None],
            "system_source": ["api", "ui", "job", None],
        }

    def test_bytes_and_file_like_sources(self) -> None:
        body = AWKWARD.encode()
        stream = io.BytesIO(body)
        from_file = read_counting_csv(stream)
        assert not stream.closed
        assert list(from_file.timestamps_ms) == list(read_counting_csv(body).timestamps_ms)

    def test_repeated_values_share_one_string(self) -> None:
        body = "timestamp,event_type\n" + "".join(
            f"2026-11-21T00:00:00.00{i}Z,{'log' + 'in'}\n" for i in range(3)
        )
        column = read_counting_csv(body.encode()).attributes["event_type"]
        assert column[0] is column[1] is column[2]

    def test_only_present_split_columns_are_read(self) -> None:
        counted = read_counting_csv(b"event_id,timestamp\n1,2026-11-21T00:00:00Z\n")
        assert counted.attributes == {}
        assert len(counted) == 1

    def test_a_header_only_csv_has_no_events(self) -> None:
        counted = read_counting_csv(b"timestamp,event_type\r\n")
        assert len(counted) == 0
        assert counted.attributes == {"event_type": []}

    def test_malformed_timestamp_names_row_line_and_value(self) -> None:
        body = (
            'timestamp,description\n2026-11-21T00:00:00Z,"multi\nline"\n'
            "2026-11-21T00:00:01Z,ok\n21/11/2026 00:00,bad\n"
        )
        with pytest.raises(CountingCsvError) as caught:
            read_counting_csv(body.encode())
        assert str(caught.value).startswith(
            "counting CSV row 3 (line 5): timestamp '21/11/2026 00:00' is not an ISO-8601 "
            "date and time such as 1970-01-01T00:00:00.000Z"
        )

    def test_a_missing_timestamp_cell_is_malformed(self) -> None:
        with pytest.raises(CountingCsvError, match=r"row 1 \(line 2\): timestamp ''"):
            read_counting_csv(b"event_id,timestamp\n1\n")

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "empty: no header row"),
            (b"event_id,time\n", "no 'timestamp' column; columns: \\['event_id', 'time'\\]"),
            (b"timestamp,TIMESTAMP\n", "has the column 'timestamp' twice"),
            (b"timestamp\n\xff\xfe\n", "is not utf-8-sig text"),
        ],
    )
    def test_unreadable_csv(self, body: bytes, message: str) -> None:
        with pytest.raises(CountingCsvError, match=message):
            read_counting_csv(body)

    def test_text_chunks_are_refused(self) -> None:
        with pytest.raises(TypeError, match="gave str, expected bytes"):
            read_counting_csv(iter(["timestamp\n"]))  # type: ignore[arg-type]

    @settings(max_examples=100, deadline=None)
    @given(
        rows=st.lists(
            st.tuples(
                st.integers(0, 86_399_999),
                st.one_of(st.just(""), st.text(st.characters(codec="utf-8"), min_size=1)),
                st.text(st.characters(codec="utf-8")),
            ),
            max_size=30,
        ),
        chunk_size=st.integers(1, 64),
    )
    def test_whatever_csv_writes_reads_back(
        self, rows: list[tuple[int, str, str]], chunk_size: int
    ) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["description", "timestamp", "event_type"])
        for offset, event_type, description in rows:
            stamp = dt.datetime(2026, 11, 21, tzinfo=dt.UTC) + dt.timedelta(milliseconds=offset)
            writer.writerow([description, stamp.isoformat(timespec="milliseconds"), event_type])
        counted = read_counting_csv(chunks(out.getvalue().encode(), chunk_size))
        assert list(counted.timestamps_ms) == [DAY_MS + offset for offset, _, _ in rows]
        assert counted.attributes["event_type"] == [
            value if value.strip() else None for _, value, _ in rows
        ]


def test_counting_query_asks_the_same_export_as_csv_in_utc() -> None:
    base = AuditExportQuery(
        event_type=("login",), file_type="pdf", locale="de-DE", timezone="Europe/Paris"
    )
    query = counting_query(
        base, DAY_MS, dt.datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=dt.UTC)
    )
    assert query.to_params() == [
        ("range_start", "2026-11-21T00:00:00.000Z"),
        ("range_end", "2026-11-21T23:59:59.999999Z"),
        ("event_type", "login"),
        ("file_type", "csv"),
        ("locale", "en"),
        ("timezone", "UTC"),
    ]


class TestParseEventTimestamp:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-11-21T00:00:00Z", 0),
            ("2026-11-21T00:00:00.5Z", 500),
            ("2026-11-21T00:00:00.999999+00:00", 999),
            ("2026-11-21T05:30:00.010+05:30", 10),
            ("2026-11-20T23:00:00.020-01:00", 20),
            (" 2026-11-21 00:00:00.030 ", 30),
            ("20261121T000000.040Z", 40),
        ],
    )
    def test_offsets_become_utc_milliseconds(self, text: str, expected: int) -> None:
        assert parse_event_timestamp(text) == DAY_MS + expected

    @pytest.mark.parametrize("text", ["", "2026-11-21", "yesterday", "2026-13-01T00:00:00Z"])
    def test_not_a_date_and_time(self, text: str) -> None:
        with pytest.raises(ValueError, match=r"not an ISO-8601 date and time|month must be"):
            parse_event_timestamp(text)


class TestCountedEvents:
    def test_from_timestamps_reads_blanks_as_missing(self) -> None:
        counted = CountedEvents.from_timestamps([DAY_MS, DAY_MS], event_type=["a", " "])
        assert counted.values_of(1) == {"event_type": None}

    def test_columns_must_match_the_timestamps(self) -> None:
        with pytest.raises(ValueError, match="'sub_type' has 1 values for 2 timestamps"):
            CountedEvents.from_timestamps([DAY_MS, DAY_MS], sub_type=["x"])

    def test_unknown_attribute(self) -> None:
        with pytest.raises(ValueError, match="unknown attribute 'auditee_id'"):
            CountedEvents.from_timestamps([DAY_MS], auditee_id=["x"])

    def test_counted_csv_plans_windows(self) -> None:
        body = "timestamp,event_type\n" + "".join(
            f"2026-11-21T00:00:00.00{i % 3}Z,{'ab'[i % 2]}\n" for i in range(9)
        )
        counted = read_counting_csv(body.encode())
        windows = plan_pdf_windows(counted, DAY_MS, DAY_MS + 999, limit=2)
        assert sum(w.expected_events or 0 for w in windows) == 9
        # each instant holds 3 events: split into its bigger value, then the other
        assert [w.filters.get("event_type") for w in windows] == [
            *[("a",), ("b",)],
            *[("b",), ("a",)],
            *[("a",), ("b",)],
            None,
        ]
