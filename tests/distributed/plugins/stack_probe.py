"""A deferrable probe for the native distributed stack tests.

Lives in the plugins folder because the triggerer imports trigger classes from
sys.path (plugins/, never dags/). ``WaitForFileOperator`` defers to
``FileSignalTrigger``, which fires once a file exists (the test creates it when it
wants the task to finish) or yields ``timeout`` at an absolute deadline. The event
says which process ran the trigger, so a test can tell which triggerer took it over.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent


class FileSignalTrigger(BaseTrigger):
    """Fires ``success`` once ``path`` exists, ``timeout`` at ``deadline`` (epoch seconds)."""

    def __init__(self, *, path: str, deadline: float, poll_interval: float = 0.5) -> None:
        super().__init__()
        self.path = path
        self.deadline = deadline
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"path": self.path, "deadline": self.deadline, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while time.time() < self.deadline:
            if await asyncio.to_thread(os.path.exists, self.path):
                yield TriggerEvent({"status": "success", **_runner_identity()})
                return
            await asyncio.sleep(self.poll_interval)
        yield TriggerEvent({"status": "timeout", **_runner_identity()})


def _runner_identity() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "pid": os.getpid(), "pgid": os.getpgid(0)}


class WaitForFileOperator(BaseOperator):
    """Defers until ``signal_path`` exists; returns the trigger event (who ran it)."""

    template_fields = ("signal_path",)

    def __init__(self, *, signal_path: str, wait_seconds: float = 600.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signal_path = signal_path
        self.wait_seconds = wait_seconds

    def execute(self, context: Context) -> None:
        trigger = FileSignalTrigger(path=self.signal_path, deadline=time.time() + self.wait_seconds)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            raise AirflowException(f"no signal file {self.signal_path}: {event}")
        return {**event, "worker_hostname": socket.gethostname(), "worker_pid": os.getpid()}
