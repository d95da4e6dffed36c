"""Maxsight audit events export: hook, operators, query rules, PDF windows, its spec."""

from compliance_exports.vendors.maxsight.spec import VENDOR

__all__ = ["VENDOR"]
