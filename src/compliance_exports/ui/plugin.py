"""``EvidencePlugin``: what the project adds to the Airflow UI."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class EvidencePlugin(AirflowPlugin):
    name = "compliance_exports"
