"""The ``oleria`` connection type: the one source of its form and its hook's names.

Imported by ``provider_info.py`` in any Airflow process: standard library only.
"""

from __future__ import annotations

from compliance_exports.core.connection import ConnectionType, text_field

CONNECTION = ConnectionType(
    conn_type="oleria",
    hook_name="Oleria",
    hook_class_name="compliance_exports.vendors.oleria.hook.OleriaHook",
    host_placeholder="https://api.oleria.example",
    login="Client ID",
    key_label="Client secret",
    fields={
        "token_url": text_field(
            "Token URL",
            "OAuth2 client-credentials token endpoint (absolute, or a path on the host).",
        ),
        "audience": text_field("Audience", "OAuth2 audience, when the tenant asks for one."),
    },
)
