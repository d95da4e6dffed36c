"""Access-drift benchmark: the project's snapshot diff against a plain DuckDB query.

Two consecutive snapshots of an identity inventory (:data:`ROWS` rows each, string key
``identityId`` (UUID-shaped, in no particular order), 14 columns of strings, ints, bools
and timestamps with nulls), generated deterministically from :data:`SEED` into a
temporary directory, each written as :data:`PARTS` Parquet parts (zstd level 1, row
groups of 131,072 rows, like the landing step's output). Day 2 is day 1 with 1% churn:
0.4% of the keys changed (one to three columns each: a later login, a flipped flag, a
count, a department or status, a value nulled or filled in), 0.3% removed and 0.3% added
(appended at the end, as an export lists new identities).

Each path writes the change rows of the two days to Parquet:

* **project**: :func:`compliance_exports.landing.changes.diff_snapshots` with its
  default memory budget (256 MiB): out of core here (key ranges spilled to disk);
* **duckdb**: :data:`BASELINE_SQL`, the plain query a data engineer would write: a full
  outer join on the key, keeping the rows whose key is missing on one side or whose
  non-key columns are ``IS DISTINCT FROM`` the other side's, ordered by key, ``COPY``-ed
  to Parquet (both rows side by side: ``before_<col>``, ``after_<col>``); DuckDB's
  defaults otherwise (no memory limit set: it keeps the join in memory);
* **project_in_memory** (information, not a target): the project with a budget large
  enough not to spill (:data:`IN_MEMORY_BUDGET`), to show what the out-of-core path costs.

Each run is its own subprocess (imports done before the clock starts; peak RSS is the
child's own ``VmHWM``, which, unlike ``ru_maxrss``, is reset by ``execve``); all are
limited to :data:`THREADS` threads (pyarrow's CPU pool, DuckDB's ``threads``). The
project's children cannot import pandas, as in production (it is only in
requirements-dev.txt): otherwise pyarrow imports it on its first conversion of a Python
value (~0.4 s, ~40 MB). The paths run interleaved, :data:`REPEAT` times each; the median
run counts (seconds, MB/s, peak RSS). Throughput is the Parquet bytes of both snapshots
over the run's wall time. The first run of each path keeps its output, and the bench
fails unless they hold the same change rows: DuckDB's rows are normalised to the
project's shape (``changed_columns`` and the masked ``before``/``after`` structs derived
from the two full rows in Python) and compared as lists sorted by key; the project's
two outputs must be identical, in key order.

Run: ``python -m bench.changes`` (writes ``bench/results/changes.json``);
``python -m bench.changes --rows 100000 --no-write`` for a quick look.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "changes.json"
ROWS = 1_000_000
SEED = 20261120
PARTS = 2  # Parquet part files per snapshot
ROW_GROUP_ROWS = 131_072
CHURN = {"changed": 0.004, "added": 0.003, "removed": 0.003}
THREADS = 2
REPEAT = 3
KEY = "identityId"
ENGINES = ("project", "duckdb", "project_in_memory")
IN_MEMORY_BUDGET = 4 * 2**30  # enough for no spill: shows what the out-of-core path costs
MB = 1024 * 1024
TARGETS = {"throughput_vs_duckdb": 1.0, "rss_vs_duckdb": 1.0}  # >= and <= respectively

#: The non-key columns, in schema order (all compared).
VALUES = (
    "displayName",
    "email",
    "identityType",
    "status",
    "department",
    "jobTitle",
    "managerId",
    "isAdmin",
    "mfaEnabled",
    "groupsCount",
    "entitlementsCount",
    "dormantDays",
    "createdAt",
    "lastLoginAt",
)

BASELINE_SQL = """
COPY (
  SELECT CASE WHEN b.{key} IS NULL THEN 'added'
              WHEN a.{key} IS NULL THEN 'removed'
              ELSE 'changed' END AS change,
         coalesce(a.{key}, b.{key}) AS {key},
         {before_columns},
         {after_columns}
  FROM read_parquet({before_files}) AS b
  FULL OUTER JOIN read_parquet({after_files}) AS a ON a.{key} = b.{key}
  WHERE b.{key} IS NULL
     OR a.{key} IS NULL
     OR {distinct}
  ORDER BY {key}
) TO '{out}' (FORMAT parquet)
"""


def baseline_sql(before: Sequence[Path], after: Sequence[Path], out: Path) -> str:
    """:data:`BASELINE_SQL` for these files."""

    def files(paths: Sequence[Path]) -> str:
        return "[" + ", ".join(f"'{p}'" for p in paths) + "]"

    return BASELINE_SQL.format(
        key=KEY,
        before_columns=",\n         ".join(f"b.{c} AS before_{c}" for c in VALUES),
        after_columns=",\n         ".join(f"a.{c} AS after_{c}" for c in VALUES),
        before_files=files(before),
        after_files=files(after),
        distinct="\n     OR ".join(f"b.{c} IS DISTINCT FROM a.{c}" for c in VALUES),
        out=out,
    )


# --------------------------------------------------------------------------- data


def _uuids(rng: Any, rows: int) -> Any:
    """``rows`` random UUID-shaped strings (36 characters), as an Arrow string array."""
    import binascii

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hexed = binascii.hexlify(rng.bytes(16 * rows))
    offsets = np.arange(0, 32 * (rows + 1), 32, dtype=np.int32)
    plain = pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(hexed))
    pieces = [pc.utf8_slice_codeunits(plain, a, b) for a, b in ((0, 8), (8, 12), (12, 16))]
    pieces += [pc.utf8_slice_codeunits(plain, a, b) for a, b in ((16, 20), (20, 32))]
    return pc.binary_join_element_wise(*pieces, "-")


FIRST = ("Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances")
LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie")
TYPES = ("human", "service", "external")
STATUSES = ("active", "disabled", "locked", "pending")
DEPARTMENTS = (
    "Sales", "Engineering", "Finance", "HR", "Legal", "Support", "IT", "Ops", "Marketing",
    "Security", "Procurement", "Research", "Facilities", "Data", "Design",
)  # fmt: skip
TITLES = tuple(
    f"{level} {role}"
    for level in ("Junior", "Senior", "Lead", "Principal")
    for role in ("Engineer", "Analyst", "Manager", "Consultant", "Administrator")
)
EPOCH_2020_US = 1_577_836_800_000_000
DAY_US = 86_400_000_000


def _people(rng: Any, rows: int, ids: Any, managers: Any) -> dict[str, Any]:
    """The non-key columns of ``rows`` identities (Arrow arrays; ``ids`` are their keys)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def pick(values: Sequence[str], p: Sequence[float] | None = None) -> Any:
        return pa.array(values).take(pa.array(rng.choice(len(values), rows, p=p)))

    def nulls(share: float) -> Any:
        return rng.random(rows) < share

    first, last = pick(FIRST), pick(LAST)
    number = pc.cast(pa.array(rng.integers(1, 100_000, rows)), pa.string())
    created = EPOCH_2020_US + rng.integers(0, 5 * 365 * DAY_US, rows)
    login = created + rng.integers(0, 365 * DAY_US, rows)
    utc = pa.timestamp("us", tz="UTC")
    return {
        "displayName": pc.binary_join_element_wise(first, last, " "),
        "email": pc.binary_join_element_wise(
            pc.utf8_lower(first), ".", pc.utf8_lower(last), number, "@example.com", ""
        ),
        "identityType": pick(TYPES, (0.8, 0.15, 0.05)),
        "status": pick(STATUSES, (0.85, 0.1, 0.03, 0.02)),
        "department": pick(DEPARTMENTS),
        "jobTitle": pc.if_else(pa.array(nulls(0.1)), None, pick(TITLES)),
        "managerId": pc.if_else(
            pa.array(nulls(0.2)),
            None,
            managers.take(pa.array(rng.integers(0, len(managers), rows))),
        ),
        "isAdmin": pa.array(rng.random(rows) < 0.03),
        "mfaEnabled": pa.array(rng.random(rows) < 0.7),
        "groupsCount": pa.array(rng.integers(0, 60, rows), pa.int64()),
        "entitlementsCount": pa.array(rng.integers(0, 500, rows), pa.int64()),
        "dormantDays": pa.array(rng.integers(0, 400, rows), pa.int64(), mask=nulls(0.25)),
        "createdAt": pa.array(created, pa.int64()).cast(utc),
        "lastLoginAt": pa.array(login, pa.int64(), mask=nulls(0.1)).cast(utc),
        "_ids": ids,
        "_rows": np.arange(rows),
    }


def _change(rng: Any, table: Any, rows: Any) -> Any:
    """``table`` with 1-3 columns of each row in ``rows`` (sorted indices) really changed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    mutable = (
        "lastLoginAt",
        "isAdmin",
        "mfaEnabled",
        "groupsCount",
        "department",
        "status",
        "jobTitle",
        "dormantDays",
    )
    count = len(rows)
    chosen = np.zeros((count, len(mutable)), dtype=bool)
    for row, how_many in enumerate(rng.integers(1, 4, count)):
        chosen[row, rng.choice(len(mutable), how_many, replace=False)] = True
    everywhere = np.zeros(table.num_rows, dtype=bool)
    for index, name in enumerate(mutable):
        where = np.zeros(table.num_rows, dtype=bool)
        where[rows[chosen[:, index]]] = True
        column = table.column(name).combine_chunks()
        mask = pa.array(where)
        if name == "lastLoginAt":  # a later login, or a first one
            later = pc.add(
                pc.fill_null(column, table.column("createdAt").combine_chunks()),
                pa.scalar(DAY_US, pa.duration("us")),
            )
            new = pc.if_else(mask, later, column)
        elif name in ("isAdmin", "mfaEnabled"):
            new = pc.if_else(mask, pc.invert(column), column)
        elif name == "groupsCount":
            new = pc.if_else(mask, pc.add(column, 1 + int(rng.integers(0, 5))), column)
        elif name in ("department", "status"):
            values = DEPARTMENTS if name == "department" else STATUSES
            shift = pa.array(rng.integers(1, len(values), table.num_rows))
            position = pc.index_in(column, pa.array(values))
            other = pa.array(values).take(
                pa.array((np.asarray(position) + np.asarray(shift)) % len(values))
            )
            new = pc.if_else(mask, other, column)
        else:  # jobTitle, dormantDays: a value becomes null, a null gets a value
            filler = pa.scalar("Interim Manager" if name == "jobTitle" else 7, column.type)
            toggled = pc.if_else(pc.is_null(column), filler, pa.scalar(None, column.type))
            new = pc.if_else(mask, toggled, column)
        table = table.set_column(table.schema.get_field_index(name), name, new)
        everywhere |= where
    assert everywhere.sum() == count
    return table


def generate(directory: Path, rows: int = ROWS, seed: int = SEED) -> dict[str, Any]:
    """Write the two days' parts into ``directory``/before and /after; describe them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    counts = {kind: round(rows * share) for kind, share in CHURN.items()}
    ids = _uuids(rng, rows + counts["added"])
    assert len(ids.unique()) == len(ids)
    managers = ids.slice(0, max(1, rows // 50))
    day1_ids, new_ids = ids.slice(0, rows), ids.slice(rows)

    def table(keys: Any) -> Any:
        columns = _people(rng, len(keys), keys, managers)
        return pa.table({KEY: keys, **{name: columns[name] for name in VALUES}})

    day1 = table(day1_ids)
    touched = rng.choice(rows, counts["removed"] + counts["changed"], replace=False)
    removed = np.sort(touched[: counts["removed"]])
    changed = np.sort(touched[counts["removed"] :])
    day2 = _change(rng, day1, changed)
    keep = np.ones(rows, dtype=bool)
    keep[removed] = False
    day2 = pa.concat_tables([day2.filter(pa.array(keep)), table(new_ids)])

    sides = {}
    for name, snapshot in (("before", day1), ("after", day2)):
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        per_part = -(-snapshot.num_rows // PARTS)
        for index in range(PARTS):
            path = folder / f"part-{index:05d}.parquet"
            pq.write_table(
                snapshot.slice(index * per_part, per_part),
                path,
                row_group_size=ROW_GROUP_ROWS,
                compression="zstd",
                compression_level=1,
            )
            paths.append(path)
        sides[name] = {
            "rows": snapshot.num_rows,
            "files": [str(p) for p in paths],
            "bytes": sum(p.stat().st_size for p in paths),
        }
    return {"rows": rows, "seed": seed, "churn": counts, **sides}


# --------------------------------------------------------------------------- engines (child side)


def run_project(before: list[Path], after: list[Path], out: Path, **options: Any) -> dict[str, Any]:
    from compliance_exports.landing.changes import diff_snapshots

    summary, parts = diff_snapshots(before, after, [KEY], out, **options)
    return {
        "rows": summary.rows,
        "added": summary.added,
        "removed": summary.removed,
        "changed": summary.changed,
        "parts": len(parts),
    }


def run_project_in_memory(before: list[Path], after: list[Path], out: Path) -> dict[str, Any]:
    return run_project(before, after, out, memory_budget=IN_MEMORY_BUDGET)


def run_duckdb(before: list[Path], after: list[Path], out: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET threads = {THREADS}")
    target = out / "duckdb.parquet"
    con.execute(baseline_sql(before, after, target))
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(target)]).fetchall()[0][0]
    return {"rows": rows}


RUNNERS = {
    "project": run_project,
    "duckdb": run_duckdb,
    "project_in_memory": run_project_in_memory,
}
_PROJECT = ("compliance_exports.landing.changes", "pyarrow.parquet", "pyarrow.compute")
PRELOAD = {"project": _PROJECT, "duckdb": ("duckdb",), "project_in_memory": _PROJECT}


class _NoPandas(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail, as it does in the production image."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (not in requirements.txt)")


def child(engine: str, data: Path, out: Path) -> None:
    """Run one engine once, print its measurements as JSON (the subprocess side)."""
    project = engine.startswith("project")
    if project:
        # As in production (pandas is not in requirements.txt): without this, pyarrow's first
        # conversion of a Python value imports the dev venv's pandas (~0.4 s, ~40 MB).
        sys.meta_path.insert(0, _NoPandas())
    for module in PRELOAD[engine]:
        importlib.import_module(module)
    if project:
        import pyarrow as pa

        pa.set_cpu_count(THREADS)
    before = sorted((data / "before").glob("*.parquet"))
    after = sorted((data / "after").glob("*.parquet"))
    out.mkdir(parents=True, exist_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    report = RUNNERS[engine](before, after, out)
    report["seconds"] = time.perf_counter() - started
    report["cpu_seconds"] = time.process_time() - cpu
    report["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(report))


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``: reset by ``execve``, unlike ``ru_maxrss``)."""
    import resource

    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


# --------------------------------------------------------------------------- parent side


def measure_once(engine: str, data: Path, out: Path, input_bytes: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.changes", "--child", engine, str(data), str(out)]
    load = os.getloadavg()[0]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["mb_per_s"] = round(input_bytes / MB / report["seconds"], 1)
    report["seconds"] = round(report["seconds"], 3)
    report["cpu_seconds"] = round(report["cpu_seconds"], 2)
    report["peak_rss_mb"] = round(report["peak_rss_mb"], 1)
    report["load_before"] = round(load, 2)
    return report


def median_of(runs: list[dict[str, Any]], input_bytes: int) -> dict[str, Any]:
    seconds = statistics.median(run["seconds"] for run in runs)
    return {
        "seconds": round(seconds, 3),
        "mb_per_s": round(input_bytes / MB / seconds, 1),
        "peak_rss_mb": round(statistics.median(run["peak_rss_mb"] for run in runs), 1),
        "max_peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        "cpu_seconds": round(statistics.median(run["cpu_seconds"] for run in runs), 2),
        "rows": runs[0]["rows"],
        "runs": runs,
    }


# --------------------------------------------------------------------------- agreement


def project_rows(out: Path) -> list[tuple[Any, ...]]:
    """The project's change rows as (change, key, changed_columns, before, after) tuples."""
    import pyarrow.parquet as pq

    rows = []
    for part in sorted(out.glob("part-*.parquet")):
        for row in pq.read_table(part).to_pylist():
            rows.append(
                _row(row["change"], row[KEY], row["changed_columns"], row["before"], row["after"])
            )
    return rows


def duckdb_rows(path: Path) -> list[tuple[Any, ...]]:
    """DuckDB's rows, normalised to the project's shape."""
    import pyarrow.parquet as pq

    rows = []
    for row in pq.read_table(path).to_pylist():
        old = {c: row[f"before_{c}"] for c in VALUES}
        new = {c: row[f"after_{c}"] for c in VALUES}
        change = row["change"]
        if change == "added":
            rows.append(_row(change, row[KEY], [], None, new))
        elif change == "removed":
            rows.append(_row(change, row[KEY], [], old, None))
        else:
            differ = [c for c in VALUES if old[c] != new[c]]
            rows.append(
                _row(
                    change,
                    row[KEY],
                    differ,
                    {c: old[c] if c in differ else None for c in VALUES},
                    {c: new[c] if c in differ else None for c in VALUES},
                )
            )
    return rows


def _row(
    change: str,
    key: str,
    changed: list[str],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> tuple[Any, ...]:
    def values(row: dict[str, Any] | None) -> tuple[Any, ...] | None:
        return None if row is None else tuple(row[c] for c in VALUES)

    return (change, key, tuple(changed), values(old), values(new))


def check_agreement(
    project_out: Path, duckdb_out: Path, others: Sequence[Path] = ()
) -> dict[str, Any]:
    """Fail unless both outputs hold the same change rows; the project's must be sorted.

    ``others``: more outputs of the project (other settings) that must be the same rows in
    the same order.
    """
    ours = project_rows(project_out)
    theirs = duckdb_rows(duckdb_out / "duckdb.parquet")
    keys = [row[1] for row in ours]
    if keys != sorted(keys):
        raise AssertionError("the project's change rows are not sorted by key")
    if sorted(ours, key=lambda r: r[1]) != sorted(theirs, key=lambda r: r[1]):
        only_ours = set(ours) - set(theirs)
        only_theirs = set(theirs) - set(ours)
        raise AssertionError(
            f"change rows differ: {len(ours)} project vs {len(theirs)} DuckDB; "
            f"{len(only_ours)} only in the project (e.g. {sorted(only_ours)[:2]}), "
            f"{len(only_theirs)} only in DuckDB (e.g. {sorted(only_theirs)[:2]})"
        )
    for other in others:
        if project_rows(other) != ours:
            raise AssertionError(f"the project's output in {other.name} differs")
    kinds = {
        kind: sum(1 for row in ours if row[0] == kind) for kind in ("added", "removed", "changed")
    }
    return {"identical": True, "rows": len(ours), **kinds}


# --------------------------------------------------------------------------- run


def run(rows: int = ROWS, repeat: int = REPEAT) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
            "duckdb": duckdb.__version__,
            "platform": platform.platform(),
            "loadavg_at_start": list(os.getloadavg()),
        },
        "settings": {
            "rows": rows,
            "seed": SEED,
            "parts_per_snapshot": PARTS,
            "row_group_rows": ROW_GROUP_ROWS,
            "churn": CHURN,
            "threads": THREADS,
            "repeat": repeat,
            "project_memory_budget_mib": _default_budget() // MB,
            "project_in_memory_budget_mib": IN_MEMORY_BUDGET // MB,
            "baseline_sql": baseline_sql(
                [Path("<before parts>")], [Path("<after parts>")], Path("<out>")
            ).strip(),
        },
        "method": (
            f"each run in its own subprocess (imports before the clock), {repeat} interleaved "
            "runs per side, the median counts; MB/s = both snapshots' Parquet bytes / wall "
            "seconds; peak RSS = the child's VmHWM; outputs of the first runs compared row "
            "for row (DuckDB's normalised to the project's shape)"
        ),
        "targets": {"throughput_vs_duckdb": ">= 1.0", "rss_vs_duckdb": "<= 1.0"},
    }
    with tempfile.TemporaryDirectory(prefix="bench-changes-") as temp:
        data = Path(temp) / "data"
        described = generate(data, rows)
        input_bytes = described["before"]["bytes"] + described["after"]["bytes"]
        results["data"] = {
            "rows_before": described["before"]["rows"],
            "rows_after": described["after"]["rows"],
            "churn_rows": described["churn"],
            "input_mb": round(input_bytes / MB, 1),
        }
        runs: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
        for attempt in range(repeat):
            for engine in ENGINES:
                out = Path(temp) / f"out-{engine}-{attempt}"
                runs[engine].append(measure_once(engine, data, out, input_bytes))
                if attempt == 0:
                    continue
                _remove(out)
        results["agreement"] = check_agreement(
            Path(temp) / "out-project-0",
            Path(temp) / "out-duckdb-0",
            [Path(temp) / "out-project_in_memory-0"],
        )
    results["engines"] = {engine: median_of(found, input_bytes) for engine, found in runs.items()}
    project, duck = results["engines"]["project"], results["engines"]["duckdb"]
    throughput = round(project["mb_per_s"] / duck["mb_per_s"], 2)
    memory = round(project["peak_rss_mb"] / duck["peak_rss_mb"], 2)
    results["throughput_vs_duckdb"] = throughput
    results["rss_vs_duckdb"] = memory
    results["cpu_seconds_vs_duckdb"] = round(project["cpu_seconds"] / duck["cpu_seconds"], 2)
    in_memory = results["engines"]["project_in_memory"]
    results["in_memory_vs_duckdb"] = {  # information: what the spill costs
        "throughput": round(in_memory["mb_per_s"] / duck["mb_per_s"], 2),
        "rss": round(in_memory["peak_rss_mb"] / duck["peak_rss_mb"], 2),
        "cpu_seconds": round(in_memory["cpu_seconds"] / duck["cpu_seconds"], 2),
    }
    results["targets_met"] = {
        "throughput_vs_duckdb": throughput >= TARGETS["throughput_vs_duckdb"],
        "rss_vs_duckdb": memory <= TARGETS["rss_vs_duckdb"],
    }
    results["machine"]["loadavg_at_end"] = list(os.getloadavg())
    return results


def _default_budget() -> int:
    import inspect

    from compliance_exports.landing.changes import diff_snapshots

    default: int = inspect.signature(diff_snapshots).parameters["memory_budget"].default
    return default


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def print_table(results: dict[str, Any]) -> None:
    data = results["data"]
    print(
        f"snapshot diff, {data['rows_before']:,} -> {data['rows_after']:,} rows "
        f"({data['input_mb']} MB Parquet in), {results['agreement']['rows']:,} change rows, "
        f"{results['machine']['cpus']} CPUs, {results['settings']['threads']} threads, "
        f"median of {results['settings']['repeat']}"
    )
    print(f"{'path':<19}{'seconds':>9}{'MB/s':>8}{'peak RSS MB':>13}{'CPU s':>7}")
    for engine, run in results["engines"].items():
        print(
            f"{engine:<19}{run['seconds']:>9.2f}{run['mb_per_s']:>8.1f}"
            f"{run['peak_rss_mb']:>13.0f}{run['cpu_seconds']:>7.2f}"
        )
    met = results["targets_met"]
    print(
        f"project / DuckDB: throughput {results['throughput_vs_duckdb']}x (target >= 1x: "
        f"{'met' if met['throughput_vs_duckdb'] else 'NOT met'}), peak RSS "
        f"{results['rss_vs_duckdb']}x (target <= 1x: "
        f"{'met' if met['rss_vs_duckdb'] else 'NOT met'}), CPU time "
        f"{results['cpu_seconds_vs_duckdb']}x; change rows identical: "
        f"{results['agreement']['identical']}"
    )
    in_memory = results["in_memory_vs_duckdb"]
    print(
        f"project_in_memory / DuckDB (budget {results['settings']['project_in_memory_budget_mib']}"
        f" MiB, no spill; information): throughput {in_memory['throughput']}x, peak RSS "
        f"{in_memory['rss']}x, CPU time {in_memory['cpu_seconds']}x"
    )


def main(rows: int = ROWS, *, repeat: int = REPEAT, write: bool = True) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON results, return them."""
    results = run(rows, repeat)
    print_table(results)
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.changes", description=__doc__)
    parser.add_argument(
        "--child", nargs=3, metavar=("ENGINE", "DATA", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--no-write", action="store_true", help="do not write the results")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments(sys.argv[1:])
    if arguments.child:
        engine, data, out = arguments.child
        child(engine, Path(data), Path(out))
    else:
        main(arguments.rows, repeat=arguments.repeat, write=not arguments.no_write)
