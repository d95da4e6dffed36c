"""Deterministic export rows: addressing, awkward values, CSV rendering, selection."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.simulators import data
from include.simulators.data import (
    OLERIA_IDENTITIES,
    VEZA_ACCESS_REVIEW,
    Column,
    Dataset,
    RowRandom,
    count_rows,
    csv_chunks,
    cut_chunks,
    format_timestamp,
    get_dataset,
    oleria_dataset,
    ordered_rows,
    render_value,
    veza_diff_row,
    veza_diff_rows,
)

DATASETS = [OLERIA_IDENTITIES, VEZA_ACCESS_REVIEW, oleria_dataset("risks")]


def csv_text(dataset: Dataset, seed: int, count: int) -> str:
    return b"".join(csv_chunks(dataset.header, dataset.rows(seed, count))).decode()


class TestAddressing:
    @settings(max_examples=40, deadline=None)
    @given(
        seed=st.integers(0, 2**32),
        index=st.integers(0, 20_000),
        which=st.sampled_from(range(len(DATASETS))),
    )
    def test_row_i_is_the_same_alone_or_in_a_stream(
        self, seed: int, index: int, which: int
    ) -> None:
        dataset = DATASETS[which]
        streamed = next(dataset.rows(seed, index + 1, start=index))
        assert dataset.row(seed, index) == streamed

    @pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
    def test_same_seed_same_bytes_other_seed_other_bytes(self, dataset: Dataset) -> None:
        assert csv_text(dataset, 7, 300) == csv_text(dataset, 7, 300)
        assert csv_text(dataset, 7, 300) != csv_text(dataset, 8, 300)

    def test_variants_are_independent_tables(self) -> None:
        first = VEZA_ACCESS_REVIEW.row(1, 10, variant="cert-a")
        assert first != VEZA_ACCESS_REVIEW.row(1, 10, variant="cert-b")
        assert first == VEZA_ACCESS_REVIEW.row(1, 10, variant="cert-a")

    def test_ids_differ_across_the_body_cycle(self) -> None:
        cycle = VEZA_ACCESS_REVIEW.cycle
        ids = {VEZA_ACCESS_REVIEW.row(3, i)["result_id"] for i in (5, 5 + cycle, 5 + 2 * cycle)}
        assert len(ids) == 3

    def test_rows_have_every_column(self) -> None:
        for dataset in DATASETS:
            assert set(dataset.row(0, 0)) == set(dataset.header)

    def test_negative_index_and_count_are_refused(self) -> None:
        with pytest.raises(ValueError, match="index"):
            OLERIA_IDENTITIES.row(0, -1)
        with pytest.raises(ValueError, match="count"):
            list(OLERIA_IDENTITIES.rows(0, -1))

    def test_unknown_dataset_names_the_known_ones(self) -> None:
        with pytest.raises(KeyError, match=r"veza\.access_review"):
            get_dataset("nope")

    def test_registering_a_second_dataset_under_a_name_is_refused(self) -> None:
        clash = Dataset(VEZA_ACCESS_REVIEW.name, (Column("x"),), lambda r, i: {"x": i})
        with pytest.raises(ValueError, match="already registered"):
            data.register(clash)

    def test_generated_values_are_pinned(self) -> None:
        # Golden values: a change here changes every export's bytes for every seed.
        r = RowRandom(12345, 0)
        assert [r.below(1000) for _ in range(5)] == [472, 569, 804, 415, 996]
        assert data.stream_key(7, "x/") == 15676695331930647997
        assert VEZA_ACCESS_REVIEW.row(7, 3)["result_id"] == "957e6db9-7bd4-432e-8c52-0624f869edec"

    @given(st.integers(1, 2**40), st.integers(0, 2**63))
    def test_below_stays_in_range(self, n: int, key: int) -> None:
        r = RowRandom(key, 3)
        assert all(0 <= r.below(n) < n for _ in range(10))


@pytest.fixture(scope="module")
def awkward_rows() -> list[dict[str, object]]:
    veza = VEZA_ACCESS_REVIEW.rows(5, 2000)
    return list(itertools.chain(veza, oleria_dataset("risks").rows(5, 2000)))


def texts(rows: list[dict[str, object]]) -> list[str]:
    return [v for row in rows for v in row.values() if isinstance(v, str)]


class TestAwkwardValues:
    def test_leading_zero_ids(self, awkward_rows: list[dict[str, object]]) -> None:
        ids = [row.get("destination.datasource_id") or row.get("id") for row in awkward_rows]
        assert any(isinstance(i, str) and i.startswith("0") and i.isdigit() for i in ids)

    def test_commas_quotes_and_newlines(self, awkward_rows: list[dict[str, object]]) -> None:
        values = texts(awkward_rows)
        assert any("," in t for t in values)
        assert any('"' in t for t in values)
        newlines = sum("\n" in t for t in values)
        assert 0 < newlines < len(awkward_rows) // 20

    def test_unicode_names(self, awkward_rows: list[dict[str, object]]) -> None:
        assert any(not t.isascii() for t in texts(awkward_rows))

    def test_blanks(self, awkward_rows: list[dict[str, object]]) -> None:
        assert any(v is None for row in awkward_rows for v in row.values())

    def test_timestamps_with_and_without_milliseconds(
        self, awkward_rows: list[dict[str, object]]
    ) -> None:
        stamps = [v for row in awkward_rows for v in row.values() if isinstance(v, dt.datetime)]
        rendered = {len(format_timestamp(v)) for v in stamps}
        assert rendered == {len("2026-01-01T00:00:00Z"), len("2026-01-01T00:00:00.000Z")}
        assert all(v.tzinfo is not None for v in stamps)


class TestCsv:
    @pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
    def test_round_trips_through_a_csv_reader(self, dataset: Dataset) -> None:
        rows = list(dataset.rows(11, 500))
        parsed = list(csv.reader(io.StringIO(csv_text(dataset, 11, 500), newline="")))
        assert parsed[0] == list(dataset.header)
        assert len(parsed) == 501
        assert parsed[1:] == [[render_value(row[name]) for name in dataset.header] for row in rows]

    @pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: d.name)
    def test_whole_table_fast_path_gives_the_same_bytes(self, dataset: Dataset) -> None:
        fast = b"".join(dataset.csv_chunks(3, 1500, variant="v"))
        assert fast == b"".join(csv_chunks(dataset.header, dataset.rows(3, 1500, variant="v")))

    def test_chunks_are_bounded_and_crlf_terminated(self) -> None:
        chunks = list(
            csv_chunks(OLERIA_IDENTITIES.header, OLERIA_IDENTITIES.rows(1, 3000), chunk_bytes=4096)
        )
        assert len(chunks) > 10
        assert max(len(c) for c in chunks) < 4096 * 4 + 2048  # one row past the bound, utf-8
        assert b"".join(chunks).endswith(b"\r\n")

    def test_bom_and_row_callback(self) -> None:
        seen: list[int] = []
        text = b"".join(
            csv_chunks(["a"], [{"a": 1}, {"a": 2}], bom=True, on_row=lambda: seen.append(1))
        )
        assert text == "\ufeffa\r\n1\r\n2\r\n".encode()
        assert len(seen) == 2

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (None, ""),
            (True, "true"),
            (False, "false"),
            (0, "0"),
            (1.5, "1.5"),
            ("007", "007"),
            (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05Z"),
            (dt.datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC), "2026-01-02T03:04:05.120Z"),
            (
                dt.datetime(2026, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "2026-01-02T03:04:05Z",
            ),
        ],
    )
    def test_render_value(self, value: object, text: str) -> None:
        assert render_value(value) == text


class TestSelection:
    def test_count_rows_counts_the_filtered_stream(self) -> None:
        rows = list(OLERIA_IDENTITIES.rows(2, 400))
        admins = [row for row in rows if row["isAdmin"]]
        assert count_rows(iter(rows), lambda row: bool(row["isAdmin"])) == len(admins)
        assert count_rows(iter(rows)) == 400

    def test_ordered_rows_regenerates_rows_in_sorted_order(self) -> None:
        key = OLERIA_IDENTITIES.key(4)
        ordered = list(
            ordered_rows(
                OLERIA_IDENTITIES.rows(4, 300),
                fields=["assignedGroupsCount"],
                order=lambda records: sorted(records, key=lambda r: r["assignedGroupsCount"]),
                row_at=lambda i: OLERIA_IDENTITIES.row_at(key, i),
                where=lambda row: not row["isAdmin"],
            )
        )
        counts = [row["assignedGroupsCount"] for row in ordered]
        assert counts == sorted(counts)
        assert len(ordered) == count_rows(
            OLERIA_IDENTITIES.rows(4, 300), lambda r: not r["isAdmin"]
        )
        assert all(not row["isAdmin"] for row in ordered)

    def test_ordered_rows_refuses_more_than_its_limit(self) -> None:
        rows = OLERIA_IDENTITIES.rows(4, 50)
        with pytest.raises(ValueError, match="sorting more than 10 rows"):
            list(ordered_rows(rows, fields=["x"], order=list, row_at=dict, limit=10))  # type: ignore[arg-type]


class TestVezaDiff:
    def test_changes_cover_every_kind(self) -> None:
        rows = list(veza_diff_rows(1, 400, certification_id="b", previous_certification_id="a"))
        assert {row["change"] for row in rows} == set(data.VEZA_CHANGES)

    def test_removed_rows_come_from_the_previous_certification(self) -> None:
        for index in range(200):
            row = veza_diff_row(1, index, certification_id="b", previous_certification_id="a")
            source = "a" if row["change"] == "removed" else "b"
            expected = VEZA_ACCESS_REVIEW.row(1, index, variant=source)
            assert {k: v for k, v in row.items() if k != "change"} == expected


class TestRanges:
    @given(
        body=st.binary(min_size=1, max_size=300),
        split=st.integers(1, 50),
        first=st.integers(0, 299),
        length=st.integers(1, 300),
    )
    def test_slice_matches_bytes_slicing(
        self, body: bytes, split: int, first: int, length: int
    ) -> None:
        chunks = [body[i : i + split] for i in range(0, len(body), split)]
        header = f"bytes={first}-{first + length - 1}"
        if first >= len(body):
            with pytest.raises(data.UnsatisfiableRange):
                data.requested_range(header, len(body))
            return
        selected = data.requested_range(header, len(body))
        assert selected is not None
        got = b"".join(data.slice_chunks(chunks, *selected))
        assert got == body[first : first + length]

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            (None, None),
            ("bytes=0-", (0, 99)),
            ("bytes=-10", (90, 99)),
            ("bytes=-500", (0, 99)),
            ("bytes=10-5", None),
            ("bytes=0-1,5-6", None),
            ("items=0-1", None),
            ("bytes=-", None),
        ],
    )
    def test_requested_range(self, header: str | None, expected: tuple[int, int] | None) -> None:
        assert data.requested_range(header, 100) == expected

    def test_unknown_size_sends_the_whole_file(self) -> None:
        assert data.requested_range("bytes=0-1", None) is None


class TestCutChunks:
    def test_stops_after_the_byte_budget(self) -> None:
        assert b"".join(cut_chunks([b"abc", b"def", b"ghi"], after_bytes=5, drop=False)) == b"abcde"

    def test_drop_raises_after_the_budget(self) -> None:
        out = cut_chunks([b"abc", b"def"], after_bytes=4, drop=True)
        assert next(out) == b"abc"
        assert next(out) == b"d"
        with pytest.raises(data.DownloadCut):
            next(out)
