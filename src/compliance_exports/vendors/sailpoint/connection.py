"""The ``sailpoint`` connection type: the one source of its form and its hook's names.

Imported by ``provider_info.py`` in any Airflow process: standard library only.
"""

from __future__ import annotations

from compliance_exports.core.connection import ConnectionType, text_field

CONNECTION = ConnectionType(
    conn_type="sailpoint",
    hook_name="SailPoint Identity Security Cloud",
    hook_class_name="compliance_exports.vendors.sailpoint.hook.SailPointHook",
    host_placeholder="https://your-tenant.api.identitynow.com",
    login="Client ID",
    key_label="Client secret",
    fields={
        # No schema default: Airflow's secrets masker redacts the value of any key
        # containing "token" in the form's metadata, so a default would reach the form
        # (and a saved connection) as "***". Empty means /oauth/token (the hook).
        "token_url": text_field(
            "Token URL",
            "OAuth2 token endpoint; empty means /oauth/token on the host.",
        ),
        "api_layout": {
            "label": "API layout",
            "schema": {"type": ["string", "null"], "enum": ["v3", "unified"], "default": "v3"},
            "description": "v3: /v3/reports/...; unified: the versionless /reports/... paths.",
        },
    },
)
