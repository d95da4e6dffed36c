"""The ``maxsight`` connection type: the one source of its form and its hook's names.

Imported by ``provider_info.py`` in any Airflow process: standard library only.
"""

from __future__ import annotations

from compliance_exports.core.connection import ConnectionType

CONNECTION = ConnectionType(
    conn_type="maxsight",
    hook_name="Maxsight",
    hook_class_name="compliance_exports.vendors.maxsight.hook.MaxsightHook",
    host_placeholder="https://api.maxsight.example",
    key_label="API key",
)
