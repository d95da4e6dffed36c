"""Files that are not the pipeline's package: registry, simulators, local-stack tooling.

Everything here may import the pipeline's package ``compliance_exports``, which lives in
``plugins/`` (on Airflow's sys.path, not on a plain interpreter's): make it importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

_PLUGINS = str(Path(__file__).resolve().parent.parent / "plugins")
if _PLUGINS not in sys.path:
    sys.path.insert(0, _PLUGINS)
