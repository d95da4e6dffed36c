"""The provider info Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow's ProvidersManager calls :func:`get_provider_info` for every installed
distribution that declares the entry point (pyproject.toml). In 3.3.2 the UI's
connection form (``GET /ui/connections/hook_meta``) reads the connection types' fields
and field behaviour from here only; a hook's ``get_ui_field_behaviour()`` is deprecated
and ignored once the provider info has them, so no hook defines it.

Each built-in vendor declares its connection type in its own folder
(``vendors/<name>/connection.py``, a :class:`~compliance_exports.core.connection.
ConnectionType`): this module only collects them. Each form is what its hook reads: the
shared transport extras (``timeout``, ``ca_bundle``, ``allow_insecure_http``, the
``retry_*`` policy) plus the vendor's own (``token_url``, ``audience``, ``api_layout``).

Cheap to import and to call: the ProvidersManager may call it in any Airflow process,
before anything else of the package is needed. The vendors' ``connection`` modules (and
their packages' specs) import neither Airflow nor an HTTP client.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from compliance_exports import __version__
from compliance_exports.core.connection import ConnectionType
from compliance_exports.core.vendor import BUILTIN_VENDORS, builtin_vendor_names

DISTRIBUTION = "compliance-exports"


def builtin_connection_types() -> list[ConnectionType]:
    """The ``CONNECTION`` of every built-in vendor's ``connection`` module, by vendor name.

    A vendor folder without one is left out (``tests/packaging/test_provider_info.py``
    requires one of every built-in vendor); raising here would break every provider's
    discovery in the Airflow process.
    """
    found = []
    for name in builtin_vendor_names():
        module_name = f"{BUILTIN_VENDORS}.{name}.connection"
        if importlib.util.find_spec(module_name) is not None:
            found.append(importlib.import_module(module_name).CONNECTION)
    return found


def get_provider_info() -> dict[str, Any]:
    connections = builtin_connection_types()
    vendors = ", ".join(c.hook_name for c in connections)
    return {
        "package-name": DISTRIBUTION,
        "name": "Compliance exports",
        "description": (
            f"Scheduled, durable exports of identity-governance and compliance data "
            f"({vendors}) into an S3 data lake as evidence and Parquet."
        ),
        "versions": [__version__],
        "hooks": [
            {
                "integration-name": c.hook_name,
                "python-modules": [c.hook_class_name.rsplit(".", 1)[0]],
            }
            for c in connections
        ],
        "connection-types": [c.provider_info() for c in connections],
        "notifications": ["compliance_exports.notifiers.DeadlineMissedNotifier"],
        "plugins": [
            {
                "name": "compliance_exports",
                "plugin-class": "compliance_exports.ui.plugin.EvidencePlugin",
            }
        ],
    }
