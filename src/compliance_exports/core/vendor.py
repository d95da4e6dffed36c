"""What a vendor package declares, and how the registry and the DAG factory find it.

A vendor is one package (``compliance_exports.vendors.<name>``, or any importable
package named by its dotted path in the registry) whose ``VENDOR`` attribute is an
:class:`ExportVendor`: how its registry block is validated, how a planned slice becomes
its request, which trigger-form fields it adds, and which tasks follow ``plan`` in an
export's task group. The registry and the DAG factory only loop over what vendors
declare; nothing here names one.

Job-style vendors (submit, wait, download) extend :class:`JobExportVendor`: one durable
``export`` task per slice (:class:`~compliance_exports.core.export.ExportOperator`),
then ``land``.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

from compliance_exports.core.connection import untestable
from compliance_exports.core.errors import ExportValidationError

if TYPE_CHECKING:
    from airflow.sdk import Param

    from compliance_exports.core.export import ExportOperator
    from compliance_exports.core.fetch import ExportFetchOperator
    from compliance_exports.core.hooks import ExportHook
    from compliance_exports.registry import ExportEntry
    from compliance_exports.runs import ExportSlice

#: Where the vendors shipped with the package live (one subpackage each).
BUILTIN_VENDORS = "compliance_exports.vendors"


class ExportKind(StrEnum):
    """How an export relates to the run's data interval.

    * ``windowed``: the interval drives a filter (an event context filtered on a
      timestamp field, an audit log's time range); any past interval can be exported
      again (backfills).
    * ``snapshot``: the vendor returns current state: it cannot be taken for a past date,
      so a run whose interval ended longer than ``snapshot_grace`` ago is skipped with a
      log line saying so, and the manifest records the extraction time.
    """

    WINDOWED = "windowed"
    SNAPSHOT = "snapshot"


class PlannedSlice(TypedDict):
    """What ``plan`` hands each mapped task: one partition day of one export."""

    export: str  # the registry entry
    day: str  # the partition day, YYYY-MM-DD
    slice: dict[str, Any]  # runs.ExportSlice.to_dict(): bounds, snapshot, extracted_at
    request: dict[str, Any]  # the vendor operator's per-slice keyword arguments
    fresh_export: bool  # the trigger form's switch: new vendor jobs, no re-attaching


@dataclass(frozen=True)
class TaskKit:
    """What the DAG factory gives a vendor to lay out the tasks after ``plan``.

    ``common``: the keyword arguments every task of the export takes (connection, pool,
    retries, timeouts); ``lake``: where a raw object lands; ``land(trigger_rule=...)``:
    the generic landing task, to be expanded over ``{"raw", "planned"}`` kwargs;
    ``attach()``: the one task of a run that records each day's other originals
    (``{"raw", ...}`` items of a mapped task's results, e.g. PDFs) in the manifest
    ``land`` published, called with ``(planned, evidence)``.
    """

    common: Mapping[str, Any]
    lake: Mapping[str, Any]
    land: Callable[..., Any]
    attach: Callable[..., Any]


class ExportVendor(ABC):
    """One vendor's declarations: mostly data, a few small hooks."""

    #: lower-case name: the ``vendor=`` S3 segment, the registry block key, the default
    #: connection (``<name>_default``) and pool
    name: ClassVar[str]
    #: the export kinds this vendor can produce
    kinds: ClassVar[frozenset[ExportKind]]
    #: one line for the DAG's documentation
    summary: ClassVar[str] = ""

    @abstractmethod
    def check_params(self, params: Mapping[str, Any], kind: ExportKind) -> None:
        """Validate the registry block offline (the checks the operators run before any
        request); raise ``ExportValidationError`` naming the field."""

    @abstractmethod
    def slice_request(
        self, entry: ExportEntry, piece: ExportSlice, run_params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The per-slice operator kwargs (JSON) for ``piece`` under the run's form params."""

    @abstractmethod
    def add_tasks(self, entry: ExportEntry, planned: Any, kit: TaskKit) -> None:
        """Lay out the tasks that follow ``plan`` (``planned``: its XComArg of slices)."""

    def form_params(self, entries: Sequence[ExportEntry]) -> dict[str, Param]:
        """Trigger-form fields this vendor adds for ``entries`` (its exports in the DAG)."""
        return {}

    @abstractmethod
    def dry_run(self, entry: ExportEntry, planned: PlannedSlice) -> None:
        """Check what a slice would send, without sending it (the trigger form's dry run)."""

    def operator_class(self) -> type[ExportFetchOperator]:
        """The operator that fetches this vendor's exports (imported when called, not at
        parse time); its ``hook_class`` is the vendor's hook."""
        raise NotImplementedError(f"{type(self).__name__} declares no operator_class")

    def hook_class(self) -> type[ExportHook]:
        """The hook of this vendor's connections: its operator's ``hook_class``.

        The dry run tests an export's connection with it (``test_connection``: the hook's
        ``probe_call``, one cheap read that starts no export).
        """
        return self.operator_class().hook_class

    def check_connection(self, conn_id: str) -> tuple[bool, str]:
        """The dry run's preflight of ``conn_id``: ``(ok, message)`` from the hook's
        ``test_connection`` (never raises; the message holds no secret)."""
        try:
            hook_class = self.hook_class()
        except NotImplementedError as exc:
            return False, untestable(str(exc))
        return hook_class(conn_id).test_connection()

    def evidence_kinds(self, entry: ExportEntry, run_params: Mapping[str, Any]) -> tuple[str, ...]:
        """Kinds of other originals (e.g. ``pdf``) every partition of ``entry`` records
        in this run (``attach``); ``verify`` reports a partition that lacks them."""
        return ()

    def check_kind(self, kind: ExportKind) -> None:
        if kind not in self.kinds:
            allowed = " or ".join(sorted(k.value for k in self.kinds))
            raise ExportValidationError("kind", f"a {self.name} export is {allowed}")


class JobExportVendor(ExportVendor):
    """A vendor whose exports are remote jobs: ``plan -> export[] -> land[]``."""

    @abstractmethod
    def operator_class(self) -> type[ExportOperator]:
        """The vendor's durable export operator (imported when the DAG is built)."""

    def static_kwargs(self, entry: ExportEntry) -> dict[str, Any]:
        """Operator kwargs that come from the registry entry (the same for every slice)."""
        return {}

    def form_params(self, entries: Sequence[ExportEntry]) -> dict[str, Param]:
        from airflow.sdk import Param

        return {
            "fresh_export": Param(
                False,
                type="boolean",
                title="Fresh export",
                description=(
                    "Submit new vendor jobs instead of re-attaching to the jobs an earlier "
                    "try or run of these days started (the vendor's data changed)."
                ),
                section="What to export",
            )
        }

    def add_tasks(self, entry: ExportEntry, planned: Any, kit: TaskKit) -> None:
        operator = self.operator_class()
        if operator.hook_class.vendor != self.name:  # raw/ and curated/ would part ways
            raise UnknownVendorError(
                f"{type(self).__name__} is {self.name!r} but its operator's hook says "
                f"{operator.hook_class.vendor!r}: they name the S3 partitions, keep them equal"
            )
        export = operator.partial(
            task_id="export",
            **kit.common,
            **self.static_kwargs(entry),
            **kit.lake,
            resubmits=entry.resubmits,
            wait_timeout=entry.wait_timeout.total_seconds(),
            poll_interval=entry.poll_interval.total_seconds(),
        ).expand_kwargs(planned.map(job_export_kwargs))
        kit.land().expand_kwargs(export.output.zip(planned).map(land_kwargs))

    def dry_run(self, entry: ExportEntry, planned: PlannedSlice) -> None:
        operator = self.operator_class()(
            task_id=f"dry_run_{entry.name}",
            dataset=entry.dataset,
            bucket=entry.lake.bucket,
            **self.static_kwargs(entry),
            **planned["request"],
        )
        operator.build_request()


# --- XCom plumbing between mapped tasks (module-level: they must pickle) ---------------


def export_kwargs(planned: Mapping[str, Any]) -> dict[str, Any]:
    return {**planned["request"], "day": planned["day"]}


def job_export_kwargs(planned: Mapping[str, Any]) -> dict[str, Any]:
    return {**export_kwargs(planned), "fresh_export": bool(planned.get("fresh_export"))}


def land_kwargs(pair: tuple[Mapping[str, Any], Mapping[str, Any]]) -> dict[str, Any]:
    raw, planned = pair
    return {"raw": dict(raw), "planned": dict(planned)}


# --- finding vendors ---------------------------------------------------------------------


class UnknownVendorError(ValueError):
    """The registry names a vendor no package declares."""


def builtin_vendor_names() -> list[str]:
    package = importlib.import_module(BUILTIN_VENDORS)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg)


@functools.cache
def load_vendor(name: str) -> ExportVendor:
    """The vendor ``name``: a built-in subpackage's name, or a package's dotted path."""
    if not name or not all(part.isidentifier() for part in name.split(".")):
        known = ", ".join(builtin_vendor_names())
        raise UnknownVendorError(f"{name!r} is not a vendor name (built in: {known})")
    module_name = name if "." in name else f"{BUILTIN_VENDORS}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            known = ", ".join(builtin_vendor_names())
            raise UnknownVendorError(
                f"{name!r} is not a vendor (built in: {known}; or a package's dotted path)"
            ) from None
        raise
    vendor = getattr(module, "VENDOR", None)
    if not isinstance(vendor, ExportVendor):
        raise UnknownVendorError(f"{module_name} declares no VENDOR (an ExportVendor)")
    return vendor
