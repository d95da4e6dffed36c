"""The provider info Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow's ProvidersManager calls :func:`get_provider_info` for every installed
distribution that declares the entry point (pyproject.toml). In 3.3.2 the UI's
connection form (``GET /ui/connections/hook_meta``) reads the connection types' fields
and field behaviour from here only; the hooks' ``get_ui_field_behaviour()`` is
deprecated and ignored there. Each vendor's form is what its hook reads: the shared
transport extras (``timeout``, ``ca_bundle``, ``allow_insecure_http``, the ``retry_*``
policy) plus the vendor's own (``token_url``, ``audience``, ``api_layout``).

This module imports nothing but the standard library: the ProvidersManager may call it
in any Airflow process, before anything else of the package is needed.
"""

from __future__ import annotations

from typing import Any

from compliance_exports import __version__

DISTRIBUTION = "compliance-exports"


def _text(label: str, description: str, *, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "schema": schema, "description": description}


def _number(
    label: str, description: str, *, integer: bool = False, minimum: float = 0
) -> dict[str, Any]:
    kind = "integer" if integer else "number"
    return {
        "label": label,
        "schema": {"type": [kind, "null"], "minimum": minimum},
        "description": description,
    }


#: The extras every vendor hook reads (core/hooks.py, core/retry.py).
TRANSPORT_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": _number("Timeout (s)", "Seconds per read and write; default 30."),
    "ca_bundle": _text(
        "CA bundle", "Path of a PEM file of CAs to trust instead of the system's (TLS stays on)."
    ),
    "allow_insecure_http": {
        "label": "Allow plain HTTP",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Accept an http:// host (a simulator on loopback); never for a tenant.",
    },
    "retry_max_attempts": _number(
        "Retry: max attempts",
        "Attempts per call, the first included; default 6.",
        integer=True,
        minimum=1,
    ),
    "retry_max_elapsed": _number(
        "Retry: total budget (s)", "Seconds one call may spend retrying; default 300."
    ),
    "retry_base_delay": _number(
        "Retry: first delay (s)", "Back-off after the first failure; default 1."
    ),
    "retry_multiplier": _number("Retry: multiplier", "Back-off growth per attempt; default 2."),
    "retry_max_delay": _number(
        "Retry: max delay (s)",
        "Cap of the back-off; a longer Retry-After is still honoured; default 60.",
    ),
}

_COMMON_HIDDEN = ["schema", "port", "extra"]


def _connection_type(
    *,
    conn_type: str,
    hook: str,
    name: str,
    host: str,
    login: str | None,
    key_label: str,
    fields: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    hidden = [*_COMMON_HIDDEN, *([] if login else ["login"])]
    relabeling = {
        "host": "Base URL",
        "password": key_label,
        **({"login": login} if login else {}),
    }
    placeholders = {"host": host, "password": f"the {key_label.lower()}"}
    if login:
        placeholders["login"] = f"the {login.lower()}"
    return {
        "hook-class-name": hook,
        "hook-name": name,
        "connection-type": conn_type,
        "conn-fields": {**(fields or {}), **TRANSPORT_FIELDS},
        "ui-field-behaviour": {
            "hidden-fields": hidden,
            "relabeling": relabeling,
            "placeholders": placeholders,
        },
    }


CONNECTION_TYPES: list[dict[str, Any]] = [
    _connection_type(
        conn_type="oleria",
        hook="compliance_exports.vendors.oleria.hook.OleriaHook",
        name="Oleria",
        host="https://api.oleria.example",
        login="Client ID",
        key_label="Client secret",
        fields={
            "token_url": _text(
                "Token URL",
                "OAuth2 client-credentials token endpoint (absolute, or a path on the host).",
            ),
            "audience": _text("Audience", "OAuth2 audience, when the tenant asks for one."),
        },
    ),
    _connection_type(
        conn_type="veza",
        hook="compliance_exports.vendors.veza.hook.VezaHook",
        name="Veza",
        host="https://your-tenant.vezacloud.com",
        login=None,
        key_label="API key",
    ),
    _connection_type(
        conn_type="sailpoint",
        hook="compliance_exports.vendors.sailpoint.hook.SailPointHook",
        name="SailPoint Identity Security Cloud",
        host="https://your-tenant.api.identitynow.com",
        login="Client ID",
        key_label="Client secret",
        fields={
            # No schema default: Airflow's secrets masker redacts the value of any key
            # containing "token" in the form's metadata, so a default would reach the form
            # (and a saved connection) as "***". Empty means /oauth/token (the hook).
            "token_url": _text(
                "Token URL",
                "OAuth2 token endpoint; empty means /oauth/token on the host.",
            ),
            "api_layout": {
                "label": "API layout",
                "schema": {"type": ["string", "null"], "enum": ["v3", "unified"], "default": "v3"},
                "description": "v3: /v3/reports/...; unified: the versionless /reports/... paths.",
            },
        },
    ),
    _connection_type(
        conn_type="maxsight",
        hook="compliance_exports.vendors.maxsight.hook.MaxsightHook",
        name="Maxsight",
        host="https://api.maxsight.example",
        login=None,
        key_label="API key",
    ),
]


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": DISTRIBUTION,
        "name": "Compliance exports",
        "description": (
            "Scheduled, durable exports of identity-governance and compliance data "
            "(Oleria, Veza, SailPoint Identity Security Cloud, Maxsight) into an S3 data "
            "lake as evidence and Parquet."
        ),
        "versions": [__version__],
        "hooks": [
            {
                "integration-name": ct["hook-name"],
                "python-modules": [ct["hook-class-name"].rsplit(".", 1)[0]],
            }
            for ct in CONNECTION_TYPES
        ],
        "connection-types": CONNECTION_TYPES,
        "notifications": ["compliance_exports.notifiers.DeadlineMissedNotifier"],
        "plugins": [
            {
                "name": "compliance_exports",
                "plugin-class": "compliance_exports.ui.plugin.EvidencePlugin",
            }
        ],
    }
