"""Notifiers of this project: :class:`DeadlineMissedNotifier`, the callback of the
registry's ``deadline`` (an ``AsyncCallback`` run in the triggerer, which imports it from
the installed package)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from compliance_exports.alerts import AlertChannels, AlertMessage, deadline_message


class DeadlineMissedNotifier(BaseNotifier):
    """A DAG run missed its deadline: one message on every channel (async: it runs in the
    triggerer). Its kwargs are JSON: the channels as
    :meth:`AlertChannels.to_json` gives them, the deadline's text and the DAG id."""

    def __init__(
        self, *, channels: list[dict[str, Any]], deadline: str, dag_id: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.channels = channels
        self.deadline = deadline
        self.dag_id = dag_id

    def message(self, context: Mapping[str, Any]) -> AlertMessage:
        return deadline_message(self.dag_id, self.deadline, context)

    async def async_notify(self, context: Any) -> None:
        message = self.message(context)
        errors = await AlertChannels.from_json(self.channels).asend(message, context)
        if errors:
            raise RuntimeError("; ".join(errors))

    def notify(self, context: Any) -> None:
        errors = AlertChannels.from_json(self.channels).send(self.message(context), context)
        if errors:
            raise RuntimeError("; ".join(errors))
