"""Smoke test of the access-drift benchmark: a tiny size, both paths, no timing assertions."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.changes import (
    KEY,
    VALUES,
    baseline_sql,
    check_agreement,
    generate,
    print_table,
    run,
    run_duckdb,
    run_project,
)

ROWS = 2000


def test_a_tiny_run_measures_both_paths_and_they_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = run(ROWS, repeat=1)

    assert results["agreement"] == {
        "identical": True,
        "rows": 20,
        "added": 6,
        "removed": 6,
        "changed": 8,
    }
    for engine in ("project", "duckdb", "project_in_memory"):
        measured = results["engines"][engine]
        assert measured["rows"] == 20
        assert measured["mb_per_s"] > 0
        assert measured["peak_rss_mb"] > 0
        assert len(measured["runs"]) == 1
    assert results["throughput_vs_duckdb"] > 0
    assert results["rss_vs_duckdb"] > 0
    assert set(results["targets_met"]) == {"throughput_vs_duckdb", "rss_vs_duckdb"}
    assert results["in_memory_vs_duckdb"]["throughput"] > 0
    print_table(results)
    printed = capsys.readouterr().out
    assert "project / DuckDB: throughput" in printed
    assert "change rows identical: True" in printed


def test_the_check_fails_loudly_when_the_rows_differ(tmp_path: Path) -> None:
    generate(tmp_path / "data", ROWS)
    before = sorted((tmp_path / "data" / "before").glob("*.parquet"))
    after = sorted((tmp_path / "data" / "after").glob("*.parquet"))
    ours, theirs = tmp_path / "project", tmp_path / "duckdb"
    ours.mkdir()
    theirs.mkdir()
    # a tiny budget: the out-of-core path (key ranges, spill) against DuckDB too
    assert run_project(before, after, ours, memory_budget=64 * 1024)["rows"] == 20
    assert run_duckdb(before, after, theirs)["rows"] == 20
    assert check_agreement(ours, theirs)["identical"]

    baseline = theirs / "duckdb.parquet"
    table = pq.read_table(baseline)
    pq.write_table(table.slice(1), baseline)  # one change row missing
    with pytest.raises(AssertionError, match="change rows differ: 20 project vs 19 DuckDB"):
        check_agreement(ours, theirs)


def test_the_baseline_is_the_plain_query() -> None:
    sql = baseline_sql([Path("b.parquet")], [Path("a.parquet")], Path("out.parquet"))
    assert f"FULL OUTER JOIN read_parquet(['a.parquet']) AS a ON a.{KEY} = b.{KEY}" in sql
    for column in VALUES:
        assert f"b.{column} IS DISTINCT FROM a.{column}" in sql
    assert f"ORDER BY {KEY}" in sql
    assert "TO 'out.parquet' (FORMAT parquet)" in sql
