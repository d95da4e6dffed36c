"""Each vendor's connection type is declared once, in its folder (``connection.py``).

The hook's ``conn_type`` and ``hook_name`` are read from it, ``hook_class_name`` names
that hook, no hook keeps the deprecated ``get_ui_field_behaviour()`` (Airflow 3.3.2
ignores it once the provider info has the form; a second copy only drifts), and a
vendor's hook is its operator's ``hook_class``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import pytest

from compliance_exports.core.hooks import ExportHook
from compliance_exports.core.vendor import (
    ExportKind,
    ExportVendor,
    builtin_vendor_names,
    load_vendor,
)

VENDORS = (*builtin_vendor_names(), "tests.fifth_vendor")


def _connection_module(vendor: str) -> Any:
    package = vendor if "." in vendor else f"compliance_exports.vendors.{vendor}"
    return importlib.import_module(f"{package}.connection")


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_hook_is_named_by_its_folders_connection_type(vendor: str) -> None:
    connection = _connection_module(vendor).CONNECTION
    hook = load_vendor(vendor).hook_class()
    assert f"{hook.__module__}.{hook.__qualname__}" == connection.hook_class_name
    assert (hook.conn_type, hook.hook_name) == (connection.conn_type, connection.hook_name)
    assert "get_ui_field_behaviour" not in vars(hook)
    info = connection.provider_info()
    assert info["connection-type"] == hook.conn_type
    assert info["hook-name"] == hook.hook_name


def test_maxsights_hook_is_its_operators() -> None:
    from compliance_exports.vendors.maxsight.hook import MaxsightHook
    from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator

    vendor = load_vendor("maxsight")
    assert vendor.operator_class() is MaxsightAuditExportToS3Operator
    assert vendor.hook_class() is MaxsightHook is MaxsightAuditExportToS3Operator.hook_class


class _NoOperatorVendor(ExportVendor):
    name = "nooperator"
    kinds = frozenset({ExportKind.WINDOWED})

    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        pass

    def slice_request(
        self, entry: Any, piece: Any, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {}

    def add_tasks(self, entry: Any, planned: Any, kit: Any) -> None:
        pass

    def dry_run(self, entry: Any, planned: Any) -> None:
        pass


def test_a_vendor_without_a_hook_says_its_connection_cannot_be_tested() -> None:
    """The same words as a hook without a probe (``ExportHook.test_connection``)."""
    ok, message = _NoOperatorVendor().check_connection("nooperator_default")
    assert not ok
    assert (
        message == "_NoOperatorVendor declares no operator_class: its connection cannot be tested"
    )


def test_json_or_none_reads_json_and_nothing_else() -> None:
    import httpx

    assert ExportHook.json_or_none(httpx.Response(404, json={"code": 5})) == {"code": 5}
    assert ExportHook.json_or_none(httpx.Response(200, json=[1])) == [1]
    assert ExportHook.json_or_none(httpx.Response(200, text="<html></html>")) is None
    assert ExportHook.json_or_none(httpx.Response(404, content=b"")) is None
