"""The ``veza`` connection type: the one source of its form and its hook's names.

Imported by ``provider_info.py`` in any Airflow process: standard library only.
"""

from __future__ import annotations

from compliance_exports.core.connection import ConnectionType

CONNECTION = ConnectionType(
    conn_type="veza",
    hook_name="Veza",
    hook_class_name="compliance_exports.vendors.veza.hook.VezaHook",
    host_placeholder="https://your-tenant.vezacloud.com",
    key_label="API key",
)
