"""Submit and wait: the vendor-free halves of the export lifecycle.

* :class:`ExportSubmitOperator` validates the request before any I/O, re-attaches to the
  job a previous try started (kept in ``context["task_state_store"]``) or submits a new
  one, and returns ``{"job_id", "vendor", "request"}``.
* :class:`ExportSensor` checks once, then defers to the vendor's
  :class:`ExportStatusTrigger` (no worker slot held while waiting) and turns the one
  terminal event into a return value or an exception.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from compliance_exports.core.errors import ExportError, ExportValidationError, FatalError
from compliance_exports.core.hooks import ExportHook, ExportNotFoundError
from compliance_exports.core.states import ExportState
from compliance_exports.core.triggers import ExportStatusTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Extra time the framework gives a deferred task beyond the trigger's own deadline,
#: so the trigger's ``timeout`` event (and its cancel) always comes first.
DEADLINE_GRACE = 120.0
_SECRET_WORDS = ("secret", "password", "token", "apikey", "api_key", "credential")


def redact_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``request`` fit for XCom and logs: secret-looking keys removed."""
    clean: dict[str, Any] = {}
    for key, value in request.items():
        if any(word in key.lower() for word in _SECRET_WORDS):
            continue
        clean[key] = redact_request(value) if isinstance(value, Mapping) else value
    return clean


def request_fingerprint(request: Mapping[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ExportSubmitOperator(BaseOperator):
    """Start a vendor export once per task, whatever the number of tries.

    Subclasses set ``hook_class`` and implement :meth:`build_request`, which validates
    every argument (raising ``ExportValidationError`` naming the field) and returns the
    vendor request body.
    """

    hook_class: ClassVar[type[ExportHook]]
    #: the ``task_state_store`` key of the job this task started.
    job_key: ClassVar[str] = "export_job"

    def __init__(self, *, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.hook_class.default_conn_name

    @cached_property
    def hook(self) -> ExportHook:
        return self.hook_class(self.conn_id)

    def build_request(self) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        request = self.build_request()
        store = context.get("task_state_store")
        fingerprint = request_fingerprint(request)
        job_id = self.reusable_job(store, fingerprint)
        if job_id is None:
            job_id = self.hook.submit_export(request)
            if store is not None:
                store.set(self.job_key, {"job_id": job_id, "request_sha256": fingerprint})
        if (ti := context.get("ti")) is not None:  # lets DAGs wire ``submit.output["job_id"]``
            ti.xcom_push(key="job_id", value=job_id)
        return {"job_id": job_id, "vendor": self.hook.vendor, "request": redact_request(request)}

    def reusable_job(self, store: Any, fingerprint: str) -> str | None:
        """The job an earlier try of this task started, if it is live or succeeded."""
        if store is None:
            self.log.info("task_state_store unavailable: a retry would submit a new export")
            return None
        saved = store.get(self.job_key)
        if not isinstance(saved, dict) or not saved.get("job_id"):
            return None
        job_id = str(saved["job_id"])
        if saved.get("request_sha256") != fingerprint:
            self.log.info("request changed since job %s was submitted: submitting anew", job_id)
            return None
        try:
            state = self.hook.get_export_state(job_id)
        except ExportNotFoundError:
            self.log.info(
                "earlier job %s is unknown to %s: submitting anew", job_id, self.hook.vendor
            )
            return None
        if state.phase.is_terminal and not state.phase.is_successful:
            self.log.info("earlier job %s ended %s: submitting anew", job_id, state.raw_status)
            return None
        self.log.info(
            "re-attaching to job %s (%s) started by an earlier try", job_id, state.raw_status
        )
        return job_id


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
