"""Maxsight audit events export: the query model and its two array encodings."""
