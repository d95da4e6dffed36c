"""Oleria downloads API: hook, trigger, operators, filter rules, and its registry spec."""

from compliance_exports.vendors.oleria.spec import VENDOR

__all__ = ["VENDOR"]
