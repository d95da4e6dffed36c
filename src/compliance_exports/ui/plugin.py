"""``EvidencePlugin``: the package's Airflow plugin (Airflow 3.1+).

A FastAPI app served by the api-server under ``/compliance-evidence`` (a prefix Airflow
does not reserve) and an entry in the UI's navigation that shows its page. Every route
of the app requires an authenticated Airflow user (docs/EVIDENCE_VIEW.md). It also
registers the registry deadline's reference (``deadlines.LandedBy``), which the scheduler
looks up among the plugins' ``deadline_references`` when it creates a run.

Every Airflow process loads the plugins (the scheduler, the triggerer, each task's
process), but only the api-server serves the app: it is built on its first request
(:class:`LazyEvidenceApp`), so loading the plugin imports neither FastAPI nor the app.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from compliance_exports.deadlines import LandedBy
from compliance_exports.ui import PREFIX

NAV_NAME = "Evidence"
URL_ROUTE = "compliance-evidence"


class LazyEvidenceApp:
    """An ASGI app that builds the evidence view's FastAPI app on its first request
    (the api-server mounts any ASGI app under ``url_prefix``)."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from compliance_exports.ui.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class EvidencePlugin(AirflowPlugin):
    name = "compliance_exports"
    fastapi_apps = [
        {"app": LazyEvidenceApp(), "url_prefix": PREFIX, "name": "Compliance evidence"},
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
