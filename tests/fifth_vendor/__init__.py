"""Acme audit log exports: a fifth vendor that lives only under tests/ (issue #12).

It proves the seam: one folder (hook, trigger, operator, spec) and one registry entry
(``vendor: tests.fifth_vendor``) give a DAG that runs end to end, with no change to the
generic layers. Its simulator (:mod:`tests.fifth_vendor.simulator`) shares no code with
it. The worked example of docs/ADDING_A_VENDOR.md.
"""

from tests.fifth_vendor.spec import VENDOR

__all__ = ["VENDOR"]
