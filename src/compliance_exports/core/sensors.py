"""``ExportSensor``: wait for a vendor export job by id, for DAGs you compose yourself.

The generated DAGs use the durable :class:`~compliance_exports.core.export.ExportOperator`
(submit, wait and download in one task). The sensor is for a job started elsewhere (by
another system, or by your own task): it checks once, then defers to the vendor's
:class:`ExportStatusTrigger` (no worker slot held while waiting) and turns the one
terminal event into a return value or an exception.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from compliance_exports.core.errors import ExportError, ExportValidationError, FatalError
from compliance_exports.core.hooks import ExportHook
from compliance_exports.core.states import ExportState
from compliance_exports.core.triggers import DEADLINE_GRACE, ExportStatusTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class ExportSensor(BaseSensorOperator):
    """Wait for a vendor export to finish; deferrable by default.

    ``timeout`` (seconds, from ``BaseSensorOperator``) becomes an absolute deadline when
    the sensor first defers; at that deadline the trigger cancels the job where the
    vendor can and the task fails with ``AirflowSensorTimeout``.
    """

    trigger_class: ClassVar[type[ExportStatusTrigger]]
    template_fields = ("job_id", "conn_id")

    def __init__(
        self,
        *,
        job_id: str,
        conn_id: str | None = None,
        deferrable: bool = True,
        poll_interval: float = 30.0,
        max_poll_interval: float = 300.0,
        stall_timeout: float | None = None,
        cancel_on_timeout: bool = True,
        **kwargs: Any,
    ) -> None:
        if poll_interval <= 0:
            raise ExportValidationError("poll_interval", "must be positive")
        if max_poll_interval < poll_interval:
            raise ExportValidationError("max_poll_interval", "must be at least poll_interval")
        if stall_timeout is not None and stall_timeout <= 0:
            raise ExportValidationError("stall_timeout", "must be positive (or None: no check)")
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.job_id = job_id
        self.conn_id = conn_id or self.trigger_class.hook_class.default_conn_name
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.stall_timeout = stall_timeout
        self.cancel_on_timeout = cancel_on_timeout

    @cached_property
    def hook(self) -> ExportHook:
        return self.trigger_class.hook_class(self.conn_id)

    def execute(self, context: Context) -> Any:
        if not self.job_id or not isinstance(self.job_id, str):
            raise ExportValidationError("job_id", f"{self.job_id!r} is not a job id")
        if not self.deferrable:
            return super().execute(context)
        state = self.hook.get_export_state(self.job_id)
        if state.phase.is_terminal:
            return self.finish(state)
        self.log.info("export %s is %s: deferring", self.job_id, state.raw_status)
        deadline = time.time() + float(self.timeout)
        self.defer(
            trigger=self.trigger_class(
                conn_id=self.conn_id,
                job_id=self.job_id,
                deadline=deadline,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                stall_timeout=self.stall_timeout,
                cancel_on_timeout=self.cancel_on_timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + DEADLINE_GRACE),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        state = self.hook.get_export_state(self.job_id)
        if not state.phase.is_terminal:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self.finish(state))

    def finish(self, state: ExportState) -> dict[str, Any]:
        if not state.phase.is_successful:
            raise FatalError(self.failure_message(state))
        return state.public_dict()

    def failure_message(self, state: ExportState) -> str:
        reason = f": {state.message}" if state.message else ""
        return f"{self.hook.vendor} export {state.job_id} ended {state.raw_status}{reason}"

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> dict[str, Any]:
        status, message = event.get("status"), str(event.get("message", ""))
        if status == "success":
            return ExportState.from_dict(event["state"]).public_dict()
        if status == "failed":
            raise FatalError(self.failure_message(ExportState.from_dict(event["state"])))
        if status == "timeout":
            self.cancel_after_timeout(event)
            raise AirflowSensorTimeout(message)
        raise ExportError(f"waiting for {self.hook.vendor} export {self.job_id} failed: {message}")

    def cancel_after_timeout(self, event: Mapping[str, Any]) -> None:
        if not self.cancel_on_timeout or not self.hook.can_cancel or event.get("cancelled"):
            return
        try:
            self.hook.cancel_export(self.job_id)
        except ExportError as exc:
            self.log.warning("could not cancel export %s: %s", self.job_id, exc)
