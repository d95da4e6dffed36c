"""``LandOperator``: the ``land`` task, one raw object landed as its curated partition.

An operator class (not a ``@task``) so the OpenLineage provider's listener can ask it
for its datasets (``get_openlineage_facets_on_complete``, core/lineage.py). The registry
entry it lands for is a class attribute of a subclass made per entry
(:meth:`LandOperator.for_entry`), not a constructor argument: a mapped task's partial
arguments are serialized with the DAG, and an entry (with its vendor object) is not
JSON. The subclass keeps the name ``LandOperator`` and this module, so the serialized
DAG is the same at every parse.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from airflow.sdk import Asset, BaseOperator

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from compliance_exports.registry import ExportEntry


def entry_asset(entry: ExportEntry) -> Asset:
    """The Airflow Asset a land task of ``entry`` updates (the export's curated prefix)."""
    return Asset(entry.asset_uri, extra={"vendor": entry.vendor.name, "dataset": entry.dataset})


class LandOperator(BaseOperator):
    """Land ``raw`` (a fetch task's RawObject) as the ``planned`` slice's partition
    (Parquet + manifest); publish its changes (snapshots with a primary key); return the
    landing result with ``changes``. A failed quality gate fails the task without retry
    (the same file fails the same checks)."""

    entry: ClassVar[ExportEntry]

    @classmethod
    def for_entry(cls, entry: ExportEntry) -> type[LandOperator]:
        """The operator class that lands ``entry``'s raw objects."""
        namespace = {"entry": entry, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        made = types.new_class(cls.__name__, (cls,), exec_body=lambda body: body.update(namespace))
        return cast("type[LandOperator]", made)

    def __init__(
        self, *, raw: Mapping[str, Any], planned: Mapping[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.raw = dict(raw)
        self.planned = dict(planned)
        self._landed: dict[str, Any] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from compliance_exports.landing.quality import QualityGateError
        from compliance_exports.pipeline import land_export, publish_export_changes

        entry = self.entry
        try:
            landed = land_export(entry, self.raw, self.planned, context.get("params") or {})
            result: dict[str, Any] = dict(landed)
        except QualityGateError as gate:  # the same file fails the same checks: no retry
            raise AirflowFailException(str(gate)) from gate
        self._landed = result
        result["changes"] = publish_export_changes(entry, self.planned)
        context["outlet_events"][entry_asset(entry)].extra = {
            "rows": result.get("rows"),
            "manifest": result.get("manifest_uri"),
            "version": result.get("version"),
            "day": self.planned["day"],
            "quality_warnings": result.get("warnings") or [],
        }
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The raw object in; out, the version this task published (the schema, rows and
        bytes of its immutable manifest) and, for a keyed snapshot, the changes it
        published (read from the earlier day it compared with)."""
        from compliance_exports.core.lineage import land_lineage, openlineage_available

        if not openlineage_available():
            return None
        published, compared = self._published() if self._landed is not None else ([], [])
        return land_lineage(self.raw, published, bucket=self.entry.lake.bucket, compared=compared)

    def _published(self) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        """``([(partition prefix, manifest)], [prefixes read])`` of what this task landed."""
        import dataclasses
        import datetime as dt

        from compliance_exports.landing.land import changes_partition
        from compliance_exports.pipeline import lake_options

        assert self._landed is not None
        partition = self.entry.partition(dt.date.fromisoformat(self.planned["day"]))
        store = lake_options(self.entry).store()
        version = str(self._landed["version"])
        manifest = store.read_json(partition.version_key(version))
        published = [(partition.curated_prefix, manifest)] if manifest else []
        compared: list[str] = []
        changes = self._landed.get("changes") or {}
        if changes.get("published"):
            target = changes_partition(partition)
            live = store.read_json(target.manifest_key)
            # ours unless a later landing of the day replaced it since
            if live and (live.get("changes_of") or {}).get("current_version") == version:
                published.append((target.curated_prefix, live))
                day = dt.date.fromisoformat(str(changes["previous_day"]))
                compared.append(dataclasses.replace(partition, day=day).curated_prefix)
        return published, compared
