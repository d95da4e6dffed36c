"""What a vendor declares for its Airflow connection type: the one source of its form.

Each vendor's ``connection.py`` holds a :class:`ConnectionType` (``CONNECTION``): the
connection type and hook name (its hook's ``conn_type`` and ``hook_name`` are read from
it), the hook's dotted path, and the connection form: which standard fields it shows
and under which labels, and the extras it adds to the transport fields every vendor
hook reads (:data:`TRANSPORT_FIELDS`). :meth:`ConnectionType.provider_info` renders it
as one entry of a provider info's ``connection-types`` (``provider_info.py`` collects
the built-in vendors'; a vendor outside the package ships its own provider info).

Standard library only: ``provider_info.py`` imports every built-in vendor's declaration
whenever Airflow's ProvidersManager asks for the provider info, in any Airflow process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def text_field(label: str, description: str, *, default: str | None = None) -> dict[str, Any]:
    """A ``conn-fields`` entry holding a string (or nothing)."""
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    return {"label": label, "schema": schema, "description": description}


def number_field(
    label: str, description: str, *, integer: bool = False, minimum: float = 0
) -> dict[str, Any]:
    """A ``conn-fields`` entry holding a number (or nothing), at least ``minimum``."""
    kind = "integer" if integer else "number"
    return {
        "label": label,
        "schema": {"type": [kind, "null"], "minimum": minimum},
        "description": description,
    }


#: The extras every vendor hook reads (core/hooks.py, core/retry.py).
TRANSPORT_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": number_field("Timeout (s)", "Seconds per read and write; default 30."),
    "ca_bundle": text_field(
        "CA bundle", "Path of a PEM file of CAs to trust instead of the system's (TLS stays on)."
    ),
    "allow_insecure_http": {
        "label": "Allow plain HTTP",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Accept an http:// host (a simulator on loopback); never for a tenant.",
    },
    "retry_max_attempts": number_field(
        "Retry: max attempts",
        "Attempts per call, the first included; default 6.",
        integer=True,
        minimum=1,
    ),
    "retry_max_elapsed": number_field(
        "Retry: total budget (s)", "Seconds one call may spend retrying; default 300."
    ),
    "retry_base_delay": number_field(
        "Retry: first delay (s)", "Back-off after the first failure; default 1."
    ),
    "retry_multiplier": number_field(
        "Retry: multiplier", "Back-off growth per attempt; default 2."
    ),
    "retry_max_delay": number_field(
        "Retry: max delay (s)",
        "Cap of the back-off; a longer Retry-After is still honoured; default 60.",
    ),
}

#: standard fields no vendor hook reads (the extra has a field for each key it reads)
_ALWAYS_HIDDEN = ("schema", "port", "extra")


@dataclass(frozen=True)
class ConnectionType:
    """One vendor's connection type and its form.

    The form shows ``host`` as "Base URL" and ``password`` as ``key_label``; ``login``
    only when the vendor reads it (``login`` is then its label, e.g. "Client ID"), and
    ``fields``, the vendor's own extras, before :data:`TRANSPORT_FIELDS`.
    """

    conn_type: str
    hook_name: str
    #: the hook's dotted path (imported by Airflow only when a hook is needed)
    hook_class_name: str
    host_placeholder: str
    key_label: str
    login: str | None = None
    fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def provider_info(self) -> dict[str, Any]:
        """This connection type as an entry of the provider info's ``connection-types``."""
        hidden = [*_ALWAYS_HIDDEN, *([] if self.login else ["login"])]
        relabeling = {"host": "Base URL", "password": self.key_label}
        placeholders = {"host": self.host_placeholder, "password": f"the {self.key_label.lower()}"}
        if self.login:
            relabeling["login"] = self.login
            placeholders["login"] = f"the {self.login.lower()}"
        return {
            "hook-class-name": self.hook_class_name,
            "hook-name": self.hook_name,
            "connection-type": self.conn_type,
            "conn-fields": {
                **{name: dict(spec) for name, spec in self.fields.items()},
                **TRANSPORT_FIELDS,
            },
            "ui-field-behaviour": {
                "hidden-fields": hidden,
                "relabeling": relabeling,
                "placeholders": placeholders,
            },
        }


def untestable(reason: str) -> str:
    """The message of a connection test that cannot be made, and ``reason`` why."""
    return f"{reason}: its connection cannot be tested"
