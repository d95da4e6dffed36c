"""``EvidencePlugin``: the package's Airflow plugin (Airflow 3.1+).

A FastAPI app served by the api-server under ``/compliance-evidence`` (a prefix Airflow
does not reserve) and an entry in the UI's navigation that shows its page. Every route
of the app requires an authenticated Airflow user (docs/EVIDENCE_VIEW.md). It also
registers the registry deadline's reference (``deadlines.LandedBy``), which the scheduler
looks up among the plugins' ``deadline_references`` when it creates a run.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from compliance_exports.deadlines import LandedBy
from compliance_exports.ui.app import PREFIX, create_app

NAV_NAME = "Evidence"
URL_ROUTE = "compliance-evidence"


class EvidencePlugin(AirflowPlugin):
    name = "compliance_exports"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": PREFIX, "name": "Compliance evidence"},
    ]
    external_views = [
        {
            "name": NAV_NAME,
            "href": f"{PREFIX}/",
            "destination": "nav",
            "url_route": URL_ROUTE,
            "category": "browse",
        },
    ]
    deadline_references = [LandedBy]
