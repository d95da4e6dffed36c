"""The ``acme`` connection type: the one source of its form and its hook's names.

A built-in vendor's ``connection.py`` is collected by ``compliance_exports.provider_info``.
Acme lives outside the package, so no provider info lists it: its connections work for
the pipeline (the hook reads them by id, whatever registers their type), but Airflow's
connection form and Test button know the type only from a provider's info. A package of
its own would declare it there (docs/ADDING_A_VENDOR.md, "The connection"), as
``CONNECTION.provider_info()``; ``tests/dags/test_fifth_vendor.py`` runs without one.
Standard library only, like every vendor's.
"""

from __future__ import annotations

from compliance_exports.core.connection import ConnectionType

CONNECTION = ConnectionType(
    conn_type="acme",
    hook_name="Acme",
    hook_class_name="tests.fifth_vendor.hook.AcmeHook",
    host_placeholder="https://acme.example.com",
    key_label="API key",
)
