"""Scheduled export orchestration for identity-governance and compliance data.

Everything the DAGs, workers and the triggerer import lives in this package
(installed into every Airflow component's environment: a wheel, or editable in ``.venv``).
"""

from __future__ import annotations

__version__ = "0.1.0"
