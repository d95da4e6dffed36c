"""The compliance export DAGs, one per vendor, built from the export registry
($COMPLIANCE_EXPORTS_REGISTRY; in this checkout include/registry/exports.yaml by default).

Configuration, not code: add or change an export in the registry. Importing this file
reads the registry (no network, no heavy imports) and registers one DAG per registry
``dag`` (default ``<vendor>_exports``) with Airflow.
"""

from __future__ import annotations

from compliance_exports.dag_factory import build_dags

globals().update(build_dags())
