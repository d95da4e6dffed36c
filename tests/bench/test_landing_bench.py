"""Smoke test of the landing benchmark: small files, every engine, no timing assertions."""

from __future__ import annotations

import pyarrow.csv as pacsv
import pytest

from bench.landing import generate_csv, measure_xlsx, print_table, run

pytestmark = pytest.mark.integration


def test_a_small_run_measures_every_engine_and_the_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = 3000
    results = run([rows], s3=True, xlsx=False, repeat=2)

    for engine in ("project", "duckdb", "pandas", "project_s3"):
        measured = results["engines"][engine]["3k"]
        assert measured["mb_per_s"] > 0
        assert measured["peak_rss_mb"] > 0
    for engine in ("project", "duckdb"):  # the ratio's sides: interleaved, best of two
        measured = results["engines"][engine]["3k"]
        assert len(measured["runs"]) == 2
        assert measured["seconds"] == min(run["seconds"] for run in measured["runs"])
    assert results["engines"]["project"]["3k"]["rows"] == rows
    assert results["engines"]["project_s3"]["3k"]["rows"] == rows
    assert results["engines"]["duckdb"]["3k"]["rows"] == rows
    assert results["throughput_vs_duckdb"] > 0
    assert results["throughput_vs_duckdb_median"] > 0
    assert results["rss_vs_duckdb"] > 0
    assert results["project_rss_growth"] == 1.0  # one size: its own RSS over itself
    print_table(results)
    assert "project / DuckDB at 3k" in capsys.readouterr().out


def test_the_data_has_what_the_issue_asks_for() -> None:
    """Leading-zero ids, quoted commas, blanks, timestamps with and without milliseconds."""
    import pyarrow.compute as pc

    source = generate_csv(3000)
    text = source.read_text(encoding="utf-8")
    table = pacsv.read_csv(
        source,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(("identity_id", "created_at", "last_login_at"), "string")
        ),
    )
    assert table.num_rows == 3000
    assert table.column("identity_id")[1].as_py() == "000000001"
    assert '"Sales, EMEA"' in text
    assert table.column("dormant_days").null_count > 0
    with_ms = pc.match_substring_regex(table.column("created_at"), r"T\d\d:\d\d:\d\d\.\d{3}Z$")
    assert pc.all(with_ms).as_py()
    logins = table.column("last_login_at")
    logins = pc.filter(logins, pc.not_equal(logins, ""))
    assert 0 < len(logins) < table.num_rows  # some are blank
    without_ms = pc.match_substring_regex(logins, r" \d\d:\d\d:\d\d\+00:00$")
    assert pc.all(without_ms).as_py()


def test_xlsx_is_timed_against_openpyxl() -> None:
    measured = measure_xlsx(rows=500, repeat=1)
    assert measured["rows"] == 500
    assert measured["project_seconds"] > 0
    assert measured["openpyxl_seconds"] > 0
    assert measured["speedup_vs_openpyxl"] > 0
