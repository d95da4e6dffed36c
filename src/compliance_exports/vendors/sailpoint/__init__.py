"""SailPoint ISC reports: hook, trigger, operator, report rules, and its registry spec."""

from compliance_exports.vendors.sailpoint.spec import VENDOR

__all__ = ["VENDOR"]
