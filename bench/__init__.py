"""Benchmarks: one module per subject, each with main() -> dict; results in bench/results/.

``plugins/`` goes on ``sys.path`` here so ``python -m bench`` and ``python -m bench.<name>``
(and their subprocesses) import ``compliance_exports`` like the tests do.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
if _PLUGINS not in sys.path:
    sys.path.insert(0, _PLUGINS)
