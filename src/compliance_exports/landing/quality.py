"""Data-quality gates: checks of a converted file, evaluated before its partition is published.

Each check of a registry entry's ``quality`` policy is ``off``, ``warn`` or ``fail``
(``bad_values``: ``fail`` or ``quarantine``). A check that finds a problem reports the
status its mode names; any ``fail`` stops the landing (:class:`QualityGateError`) before
anything is staged, so the previous version stays live. Every other result is recorded
in the version's manifest (``quality``) and logged (docs/QUALITY.md).

The policy half of this module is cheap to import (the registry validates policies at
DAG parse time); pyarrow is imported only by the checks that read Parquet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from compliance_exports.landing.errors import LandingError

log = logging.getLogger(__name__)

CHECKS = (
    "empty",
    "vendor_rows",
    "trend",
    "missing_columns",
    "new_columns",
    "bad_values",
    "primary_key_unique",
)
SETTINGS = ("trend_days", "trend_band", "max_quarantined_share")
#: trend: how far back (in multiples of ``trend_days`` calendar days) earlier partitions
#: are looked for
TREND_LOOKBACK = 3
TREND_MINIMUM = 3  # earlier partitions the trend needs
DUPLICATES_NAMED = 5


class CheckMode(enum.StrEnum):
    OFF = "off"
    WARN = "warn"
    FAIL = "fail"


class BadValues(enum.StrEnum):
    FAIL = "fail"  # the first value that does not parse fails the file (BadRowPolicy.FAIL)
    QUARANTINE = "quarantine"  # such rows are set aside, up to max_quarantined_share


class QualityResult(TypedDict):
    check: str
    status: str  # pass | warn | fail | skipped
    detail: str


class QualityPolicyError(ValueError):
    """An invalid ``quality`` block; ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class QualityGateError(LandingError):
    """A check in ``fail`` mode found a problem: the partition was not published."""

    def __init__(self, export: str, day: dt.date, failed: Sequence[QualityResult]) -> None:
        self.export = export
        self.day = day
        self.failed = list(failed)
        reasons = "; ".join(f"{r['check']}: {r['detail']}" for r in failed)
        super().__init__(
            f"quality gate failed for {export} dt={day.isoformat()} "
            f"({', '.join(r['check'] for r in failed)}): {reasons}; nothing was published "
            "(the previous version, if any, stays live)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (QualityGateError, (self.export, self.day, self.failed))


@dataclass(frozen=True)
class QualityPolicy:
    """One export's checks and their settings (the registry's ``quality`` block)."""

    empty: CheckMode = CheckMode.WARN
    vendor_rows: CheckMode = CheckMode.FAIL
    trend: CheckMode = CheckMode.WARN
    missing_columns: CheckMode = CheckMode.WARN
    new_columns: CheckMode = CheckMode.WARN
    bad_values: BadValues = BadValues.FAIL
    #: None: ``fail`` when the export declares a primary key, ``off`` otherwise
    primary_key_unique: CheckMode | None = None
    trend_days: int = 7
    trend_band: tuple[float, float] = (0.5, 2.0)
    max_quarantined_share: float = 0.01

    @classmethod
    def from_mapping(cls, value: Any) -> QualityPolicy:
        """Validate a ``quality`` block (defaults and entry already merged key by key);
        :class:`QualityPolicyError` names the field."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise QualityPolicyError("quality", f"{value!r} is not a mapping of checks")
        unknown = sorted(str(key) for key in set(value) - set(CHECKS) - set(SETTINGS))
        if unknown:
            raise QualityPolicyError(
                f"quality.{unknown[0]}",
                f"not a check or setting (checks: {', '.join(CHECKS)}; "
                f"settings: {', '.join(SETTINGS)})",
            )
        fields: dict[str, Any] = {}
        for check in CHECKS:
            if check not in value:
                continue
            allowed: type[enum.StrEnum] = BadValues if check == "bad_values" else CheckMode
            fields[check] = _mode(allowed, value[check], f"quality.{check}")
        if "trend_days" in value:
            days = value["trend_days"]
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise QualityPolicyError("quality.trend_days", f"{days!r} is not a count >= 1")
            fields["trend_days"] = days
        if "trend_band" in value:
            fields["trend_band"] = _band(value["trend_band"])
        if "max_quarantined_share" in value:
            share = value["max_quarantined_share"]
            if not _number(share) or not 0 <= share <= 1:
                raise QualityPolicyError(
                    "quality.max_quarantined_share", f"{share!r} is not a share from 0 to 1"
                )
            fields["max_quarantined_share"] = float(share)
        return cls(**fields)

    def primary_key_mode(self, primary_key: Sequence[str]) -> CheckMode:
        if self.primary_key_unique is not None:
            return self.primary_key_unique
        return CheckMode.FAIL if primary_key else CheckMode.OFF

    def describe(self) -> dict[str, Any]:
        """The policy as the registry spells it (JSON-able)."""
        body = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        body["trend_band"] = list(self.trend_band)
        return {k: str(v) if isinstance(v, enum.Enum) else v for k, v in body.items()}


def _mode(allowed: type[enum.StrEnum], value: Any, where: str) -> Any:
    if value is False:  # YAML reads a bare `off` as false
        value = "off"
    try:
        return allowed(value)
    except ValueError:
        choices = " | ".join(str(m.value) for m in allowed)
        raise QualityPolicyError(where, f"{value!r} is not one of {choices}") from None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _band(value: Any) -> tuple[float, float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(_number(v) for v in value)
        or not 0 <= value[0] < value[1]
    ):
        raise QualityPolicyError(
            "quality.trend_band",
            f"{value!r} is not [low, high] with 0 <= low < high (shares of the median)",
        )
    return (float(value[0]), float(value[1]))


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Observed:
    """What the checks look at: one converted file and its context."""

    rows: int  # landed
    quarantined: int  # set aside (bad_values: quarantine)
    vendor_rows: int | None  # what the vendor reported, where it gives one
    drift: Mapping[str, Sequence[str]]  # {"added": [...], "missing": [...]}
    declared: Sequence[str]  # the declared columns (empty: no schema)
    parts: Sequence[Path]  # the converted Parquet parts, on local disk
    primary_key: Sequence[str] = ()


#: ``history(days, within)``: the rows of up to ``days`` earlier published partitions,
#: most recent first, looked for within ``within`` calendar days before this one
History = Callable[[int, int], list[int]]


def evaluate(policy: QualityPolicy, seen: Observed, history: History) -> list[QualityResult]:
    """Every check that is not ``off``, in :data:`CHECKS` order."""
    results: list[QualityResult] = []

    def add(check: str, mode: CheckMode, problem: str | None, fine: str) -> None:
        if problem is None:
            results.append({"check": check, "status": "pass", "detail": fine})
        else:
            results.append({"check": check, "status": str(mode), "detail": problem})

    def skip(check: str, why: str) -> None:
        results.append({"check": check, "status": "skipped", "detail": why})

    if policy.empty is not CheckMode.OFF:
        problem = "0 rows landed" if seen.rows == 0 else None
        add("empty", policy.empty, problem, f"{seen.rows} rows")
    if policy.vendor_rows is not CheckMode.OFF:
        _vendor_rows(policy.vendor_rows, seen, add, skip)
    if policy.trend is not CheckMode.OFF:
        _trend(policy, seen, history, add, skip)
    if policy.missing_columns is not CheckMode.OFF:
        missing = list(seen.drift.get("missing", []))
        if not seen.declared:
            skip("missing_columns", "no schema declared")
        else:
            problem = f"declared column(s) not in the file: {', '.join(missing)}"
            add(
                "missing_columns",
                policy.missing_columns,
                problem if missing else None,
                "every declared column is in the file",
            )
    if policy.new_columns is not CheckMode.OFF:
        added = list(seen.drift.get("added", []))
        if not seen.declared:
            skip("new_columns", "no schema declared")
        else:
            problem = f"undeclared column(s) in the file (landed as text): {', '.join(added)}"
            add(
                "new_columns",
                policy.new_columns,
                problem if added else None,
                "no undeclared column",
            )
    _bad_values(policy, seen, results)
    key_mode = policy.primary_key_mode(seen.primary_key)
    if key_mode is not CheckMode.OFF:
        if not seen.primary_key:
            skip("primary_key_unique", "no primary_key declared")
        else:
            add(
                "primary_key_unique",
                key_mode,
                duplicate_keys(seen.parts, seen.primary_key),
                f"({', '.join(seen.primary_key)}) is unique across {seen.rows} rows",
            )
    return results


_Add = Callable[[str, CheckMode, str | None, str], None]
_Skip = Callable[[str, str], None]


def _vendor_rows(mode: CheckMode, seen: Observed, add: _Add, skip: _Skip) -> None:
    if seen.vendor_rows is None:
        skip("vendor_rows", "the vendor reports no row count")
        return
    in_file = seen.rows + seen.quarantined
    counted = f"{seen.rows} rows landed" + (
        f" + {seen.quarantined} quarantined" if seen.quarantined else ""
    )
    problem = None
    if in_file != seen.vendor_rows:
        problem = f"{counted}, the vendor reported {seen.vendor_rows}"
    add("vendor_rows", mode, problem, f"{counted}, as the vendor reported")


def _trend(policy: QualityPolicy, seen: Observed, history: History, add: _Add, skip: _Skip) -> None:
    within = TREND_LOOKBACK * policy.trend_days
    earlier = history(policy.trend_days, within)
    if len(earlier) < TREND_MINIMUM:
        skip(
            "trend",
            f"{len(earlier)} earlier published partition(s) in the last {within} days; "
            f"the trend needs at least {TREND_MINIMUM}",
        )
        return
    median = statistics.median(earlier)
    low, high = policy.trend_band
    band = f"[{low * median:g}, {high * median:g}] ({low:g}x-{high:g}x the median {median:g} "
    band += f"of {len(earlier)} earlier partitions)"
    problem = None
    if not low * median <= seen.rows <= high * median:
        problem = f"{seen.rows} rows is outside {band}"
    add("trend", policy.trend, problem, f"{seen.rows} rows is within {band}")


def _bad_values(policy: QualityPolicy, seen: Observed, results: list[QualityResult]) -> None:
    if policy.bad_values is BadValues.FAIL:
        detail = "every value parses as its declared type (the first bad row fails the file)"
        results.append({"check": "bad_values", "status": "pass", "detail": detail})
        return
    total = seen.rows + seen.quarantined
    share = seen.quarantined / total if total else 0.0
    limit = policy.max_quarantined_share
    detail = f"{seen.quarantined} of {total} rows quarantined ({share:.2%}; limit {limit:.2%})"
    status = "pass" if not seen.quarantined else "warn" if share <= limit else "fail"
    results.append({"check": "bad_values", "status": status, "detail": detail})


def duplicate_keys(parts: Sequence[Path], key: Sequence[str]) -> str | None:
    """``None`` when ``key`` is unique (and never null) across the parts; else what is
    wrong, naming a few duplicate key values.

    Reads only the key columns, row group by row group, and counts them with a hash
    aggregation: memory grows with the key columns, not the rows' width.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counted: list[pa.Table] = []
    nulls = 0
    for path in parts:
        reader = pq.ParquetFile(path)
        for group in range(reader.num_row_groups):
            keys = reader.read_row_group(group, columns=list(key))
            present = pc.invert(_any_null(keys))
            nulls += len(keys) - pc.sum(present).as_py() if len(keys) else 0
            keys = keys.filter(present)
            # a row group's distinct keys and counts; combined across groups below
            counted.append(
                keys.group_by(list(key), use_threads=False).aggregate([([], "count_all")])
            )
    if not counted:
        return None
    combined = pa.concat_tables(counted)
    del counted
    totals = combined.group_by(list(key), use_threads=False).aggregate([("count_all", "sum")])
    dupes = totals.filter(pc.greater(totals["count_all_sum"], 1))
    problems = []
    if len(dupes):
        dupes = dupes.sort_by([(name, "ascending") for name in key])
        named = [
            _key_text(key, row) + f" (x{row['count_all_sum']})"
            for row in dupes.slice(0, DUPLICATES_NAMED).to_pylist()
        ]
        more = f" and {len(dupes) - DUPLICATES_NAMED} more" if len(dupes) > DUPLICATES_NAMED else ""
        extra = int(pc.sum(dupes["count_all_sum"]).as_py()) - len(dupes)
        problems.append(
            f"{len(dupes)} duplicate key value(s) ({extra} extra rows): {', '.join(named)}{more}"
        )
    if nulls:
        problems.append(f"{nulls} row(s) with a null key column")
    return "; ".join(problems) or None


def _any_null(table: Any) -> Any:
    import pyarrow.compute as pc

    mask = pc.is_null(table.column(0))
    for column in table.columns[1:]:
        mask = pc.or_(mask, pc.is_null(column))
    return mask


def _key_text(key: Sequence[str], row: Mapping[str, Any]) -> str:
    if len(key) == 1:
        return f"{key[0]}={row[key[0]]!r}"
    return "(" + ", ".join(f"{name}={row[name]!r}" for name in key) + ")"


def earlier_rows(
    read_json: Callable[[str], Any], manifest_key: Callable[[dt.date], str], day: dt.date
) -> History:
    """The trend's history from the live manifests of the days before ``day``."""

    def history(days: int, within: int) -> list[int]:
        found: list[int] = []
        for back in range(1, within + 1):
            body = read_json(manifest_key(day - dt.timedelta(days=back)))
            if isinstance(body, Mapping) and _number(body.get("rows")):
                found.append(int(body["rows"]))
                if len(found) == days:
                    break
        return found

    return history


def log_results(export: str, day: dt.date, results: Sequence[QualityResult]) -> None:
    """One log line per check: WARNING for ``warn``, ERROR for ``fail``."""
    for result in results:
        level = {"warn": logging.WARNING, "fail": logging.ERROR}.get(result["status"], logging.INFO)
        log.log(
            level,
            "quality %s dt=%s %s: %s (%s)",
            export,
            day.isoformat(),
            result["check"],
            result["status"].upper(),
            result["detail"],
        )


def warnings_of(results: Sequence[QualityResult]) -> list[str]:
    """``"<check>: <detail>"`` of every ``warn`` result (the run's visible warnings)."""
    return [f"{r['check']}: {r['detail']}" for r in results if r["status"] == "warn"]


def gate(export: str, day: dt.date, results: Sequence[QualityResult]) -> None:
    """Raise :class:`QualityGateError` when any result is ``fail``."""
    failed = [r for r in results if r["status"] == "fail"]
    if failed:
        raise QualityGateError(export, day, failed)
