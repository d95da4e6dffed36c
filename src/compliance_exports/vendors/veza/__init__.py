"""Veza access review export: hook, trigger, operator, validation, and its registry spec."""

from compliance_exports.vendors.veza.spec import VENDOR

__all__ = ["VENDOR"]
