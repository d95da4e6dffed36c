"""Veza access review export: SCIM filters, request validation and status vocabulary."""
