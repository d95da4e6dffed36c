"""Scheduled export orchestration for identity-governance and compliance data.

Everything the DAGs, workers and the triggerer import lives in this package
(``plugins/`` is on ``sys.path`` for all Airflow components; ``dags/`` is not).
"""

from __future__ import annotations

__version__ = "0.1.0"
