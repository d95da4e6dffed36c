"""Run every benchmark module in bench/ (``python -m bench``, ``make bench``).

A benchmark module exposes ``main() -> dict``: it prints its own table and writes its
results to ``bench/results/<name>.json``. Modules run one after the other (they
measure time and memory: never in parallel); one failing does not stop the others,
but makes the exit status non-zero.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def benchmark_names() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(BENCH)])
        if not info.ispkg and not info.name.startswith("_")
    )


def run_one(name: str) -> bool:
    print(f"\n=== bench.{name} ===", flush=True)
    started = time.monotonic()
    try:
        module = importlib.import_module(f"bench.{name}")
        module.main()
    except Exception:
        traceback.print_exc()
        print(f"bench.{name} FAILED after {time.monotonic() - started:.0f} s", flush=True)
        return False
    print(f"bench.{name} done in {time.monotonic() - started:.0f} s", flush=True)
    return True


def main(names: list[str] | None = None) -> int:
    chosen = names or benchmark_names()
    failed = [name for name in chosen if not run_one(name)]
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
