"""``LandedBy``: the deadline reference of a registry ``deadline`` ("06:00", "90m").

Airflow's built-in references (the logical date, the queued time) add one fixed
interval; "landed by 06:00 in Europe/Berlin" is not a fixed interval after the logical
date on the two days a year that change to or from daylight saving time. This reference
computes the due time itself from the run's data interval end
(:meth:`compliance_exports.alerts.Deadline.due`), and the DeadlineAlert adds nothing.

The scheduler evaluates it when it creates a run (``_evaluate_with``, with its own
session); it finds the class through the package's Airflow plugin
(``ui.plugin.EvidencePlugin.deadline_references``), by the ``__class_path`` Airflow
stores with a custom reference.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from airflow.sdk.definitions.deadline import BaseDeadlineReference

from compliance_exports.alerts import Deadline


@dataclass(frozen=True, eq=False)  # equality and hash: the base's, by serialized form
class LandedBy(BaseDeadlineReference):
    """Due at ``deadline`` (``Deadline.to_json()``) after the run's data interval end,
    in ``timezone``. Defaults: Airflow constructs a registered reference without
    arguments."""

    deadline: dict[str, Any] = field(default_factory=lambda: {"spec": "0m", "after_end_seconds": 0})
    timezone: str = "UTC"

    required_kwargs: ClassVar[set[str]] = {"dag_id", "run_id"}

    def serialize_reference(self) -> dict[str, Any]:
        return {
            **super().serialize_reference(),
            "deadline": self.deadline,
            "timezone": self.timezone,
        }

    def __hash__(self) -> int:  # the base hashes the serialized items: a dict is not hashable
        return hash(json.dumps(self.serialize_reference(), sort_keys=True))

    @classmethod
    def deserialize_reference(cls, reference_data: dict[str, Any]) -> LandedBy:
        return cls(deadline=dict(reference_data["deadline"]), timezone=reference_data["timezone"])

    def due(self, interval_end: dt.datetime) -> dt.datetime:
        return Deadline.from_json(self.deadline).due(interval_end, self.timezone)

    def _evaluate_with(self, *, session: Any, **kwargs: Any) -> dt.datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        end = session.scalar(
            select(DagRun.data_interval_end).where(
                DagRun.dag_id == kwargs["dag_id"], DagRun.run_id == kwargs["run_id"]
            )
        )
        return None if end is None else self.due(end)
