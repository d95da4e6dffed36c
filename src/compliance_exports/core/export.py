"""``ExportOperator``: one durable, deferrable task per export slice.

validate -> re-attach to the job an earlier try started, or submit (the job id saved in
``task_state_store`` before deferring) -> defer to the vendor's trigger (no worker slot
held while the vendor works) -> stream the file into the raw zone -> return a
:class:`~compliance_exports.core.fetch.RawObject` whose ``jobs`` tell the whole story.

What makes it durable:

* **retries and Clears re-attach**: a job that is live or succeeded is followed again,
  never submitted twice (the ledger survives both; ``dag_run.clear_number`` tells a
  Clear from a retry, see :class:`~compliance_exports.core.ledger.JobLedger`);
* **a fresh export on request**: ``fresh_export=True`` (the trigger form's switch)
  submits anew once per Clear generation; retries of that generation re-attach to it;
* **self-healing**: a job the vendor ends FAILED, CANCELLED or EXPIRED, or whose
  download link stays expired, is submitted again inside the same try, up to
  ``resubmits`` times (every resubmission logged at WARNING and kept in ``jobs``); each
  new job id is saved before the task defers again;
* **no blind re-sends**: a submission whose outcome is unknown (read timeout, dropped
  connection, 5xx other than 503) is recovered where the vendor gives a way
  (``hook.recover_submission``) or fails the task without retry, saying a job may exist;
* **long waits are deferred**: a ``Retry-After`` longer than ``worker_sleep_limit``
  (default :data:`WORKER_SLEEP_LIMIT`) is spent deferred on a timer, not sleeping in a
  worker;
* **someone else's job is never adopted**: a vendor that answers a submission with
  another run's job (:class:`~compliance_exports.core.hooks.ForeignJobRunning`) has it
  waited out, deferred and never cancelled by us, and the job submitted again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from compliance_exports.core.errors import ExportError, ExportValidationError, FatalError
from compliance_exports.core.fetch import (
    ExpiredLinkError,
    ExportFetchOperator,
    JobEndedError,
    RawObject,
)
from compliance_exports.core.hooks import (
    Download,
    ExportHook,
    ExportNotFoundError,
    ForeignJobRunning,
)
from compliance_exports.core.http import (
    AmbiguousSubmitError,
    LongWaitRequested,
    VendorResponseError,
)
from compliance_exports.core.ledger import JobLedger
from compliance_exports.core.states import ExportState
from compliance_exports.core.triggers import DEADLINE_GRACE, ExportStatusTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The longest a worker sleeps for a vendor's ``Retry-After``; longer waits are deferred.
WORKER_SLEEP_LIMIT = 30.0
#: How many long waits one try may defer before it gives up (a vendor that never relents).
MAX_DEFERRED_WAITS = 20
#: How many foreign jobs (someone else's run the vendor answered with) to wait out.
MAX_FOREIGN_WAITS = 5
T = TypeVar("T")


class ExportOperator(ExportFetchOperator):
    """Submit (or re-attach), wait deferred, and land one vendor export in the raw zone.

    A vendor subclass sets ``hook_class`` and ``trigger_class`` and implements
    :meth:`build_request` (validate every argument, raising ``ExportValidationError``
    naming the field, and return the request body) and, where the download needs them,
    :meth:`download_options`.
    """

    trigger_class: ClassVar[type[ExportStatusTrigger]]
    #: the ``task_state_store`` key of the job ledger
    ledger_key: ClassVar[str] = "export_job"
    template_fields: tuple[str, ...] = (*ExportFetchOperator.template_fields, "fresh_export")

    def __init__(
        self,
        *,
        resubmits: int = 1,
        wait_timeout: float = 3600.0,
        poll_interval: float = 15.0,
        max_poll_interval: float = 120.0,
        stall_timeout: float | None = None,
        cancel_on_timeout: bool = True,
        fresh_export: bool = False,
        worker_sleep_limit: float = WORKER_SLEEP_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resubmits = resubmits
        self.worker_sleep_limit = worker_sleep_limit
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.stall_timeout = stall_timeout
        self.cancel_on_timeout = cancel_on_timeout
        self.fresh_export = fresh_export
        self._job_id: str | None = None

    # -- what a vendor declares ----------------------------------------------------------

    def build_request(self) -> dict[str, Any]:
        """The vendor request body, every argument checked first (no I/O)."""
        raise NotImplementedError

    def download_options(self) -> dict[str, Any]:
        return {}

    def vendor_request(self) -> dict[str, Any]:
        return self.build_request()

    # -- Airflow entry points ------------------------------------------------------------

    @cached_property
    def hook(self) -> ExportHook:
        return self.hook_class(self.conn_id, sleep_limit=self.worker_sleep_limit)

    @property
    def job_id(self) -> str | None:
        return self._job_id

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.resubmits, int) or self.resubmits < 0:
            raise ExportValidationError("resubmits", f"{self.resubmits!r} is not a count >= 0")
        if self.wait_timeout <= 0 or self.poll_interval <= 0:
            raise ExportValidationError("wait_timeout", "wait_timeout and poll_interval > 0")
        if self.max_poll_interval < self.poll_interval:
            raise ExportValidationError("max_poll_interval", "must be at least poll_interval")
        if self.worker_sleep_limit < 0:
            raise ExportValidationError("worker_sleep_limit", "must be >= 0 seconds")

    def execute(self, context: Context) -> RawObject:
        self.validate()
        request = self.build_request()
        ledger = self._ledger(context, request)
        return self._unless_long_wait(ledger, lambda: self._start(context, ledger, request))

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> RawObject:
        """The trigger's one terminal event for the followed job."""
        request = self.build_request()
        ledger = self._ledger(context, request)
        status, message = event.get("status"), str(event.get("message", ""))
        if status in ("success", "failed"):
            state = ExportState.from_dict(event["state"])
            return self._unless_long_wait(
                ledger, lambda: self._proceed(context, ledger, request, state)
            )
        if status == "timeout":
            raise ExportError(
                f"{self.hook.vendor} export {event.get('job_id')} was not done within "
                f"wait_timeout ({self.wait_timeout:.0f} s): {message}"
            )
        raise ExportError(f"waiting for {self.hook.vendor} export {event.get('job_id')}: {message}")

    def resume_after_wait(self, context: Context, event: Any = None) -> RawObject:
        """Back from a deferred wait (a long ``Retry-After``, or someone else's job that
        the vendor answered with): carry on from the ledger."""
        return self.execute(context)

    # -- the lifecycle -------------------------------------------------------------------

    def _ledger(self, context: Context, request: Mapping[str, Any]) -> JobLedger:
        ledger = JobLedger.open(context, self.ledger_key, request)
        if not ledger.durable:
            self.log.warning("task_state_store unavailable: a retry would submit a new export")
        return ledger

    def _start(self, context: Context, ledger: JobLedger, request: Mapping[str, Any]) -> RawObject:
        if ledger.wants_fresh_export(self.fresh_export):
            if ledger.job_id:
                self.log.info("fresh export requested: job %s is not reused", ledger.job_id)
            ledger.start_over(fresh_export=True)
        elif ledger.job_id and not ledger.same_request:
            self.log.info("request changed since job %s: submitting anew", ledger.job_id)
            ledger.start_over(fresh_export=False)
        state = self._reattach(ledger)
        if state is None:
            state = self._submit(ledger, request, resubmit=False)
        return self._proceed(context, ledger, request, state)

    def _reattach(self, ledger: JobLedger) -> ExportState | None:
        job_id = ledger.job_id
        if not job_id:
            return None
        try:
            state = self.hook.get_export_state(job_id)
        except ExportNotFoundError:
            self.log.info("job %s is unknown to %s: submitting anew", job_id, self.hook.vendor)
            ledger.ended(job_id, "UNKNOWN", "the vendor no longer knows the job")
            return None
        self.log.info(
            "re-attaching to job %s (%s), started by an earlier try", job_id, state.raw_status
        )
        return state

    def _submit(
        self, ledger: JobLedger, request: Mapping[str, Any], *, resubmit: bool
    ) -> ExportState:
        try:
            job_id = self.hook.submit_export(request)
        except ForeignJobRunning as foreign:
            self._wait_out(ledger, foreign)
        except AmbiguousSubmitError as exc:
            recovered = self.hook.recover_submission(request, exc.asked_at)
            if recovered is None:  # no second job from one intent: a person decides
                raise AirflowFailException(f"{exc}. Check the vendor before a new try.") from None
            self.log.warning("%s; the vendor says its job is %s: following it", exc, recovered)
            job_id = recovered
        ledger.submitted(job_id, resubmit=resubmit)
        self._job_id = job_id
        return self.hook.get_export_state(job_id)

    def _proceed(
        self,
        context: Context,
        ledger: JobLedger,
        request: Mapping[str, Any],
        state: ExportState,
    ) -> RawObject:
        """Follow ``state``'s job to a file, resubmitting failed jobs within the budget."""
        while True:
            self._job_id = state.job_id
            if not state.phase.is_terminal:
                self._defer_until_done(state)
            word, reason = state.raw_status, state.message or state.raw_status
            if state.phase.is_successful:
                ledger.done(state.job_id)
                try:
                    return self._download(context, ledger, state)
                except JobEndedError as exc:  # the file went away since the status check
                    state = exc.state
                    word, reason = state.raw_status, state.message or state.raw_status
                except ExpiredLinkError as exc:
                    word, reason = "LINK_EXPIRED", f"{exc}, and polling again gave no fresh one"
            state = self._resubmit(ledger, request, state, word, reason)

    def _resubmit(
        self,
        ledger: JobLedger,
        request: Mapping[str, Any],
        state: ExportState,
        word: str,
        reason: str,
    ) -> ExportState:
        ledger.ended(state.job_id, word, reason)
        if ledger.resubmits >= self.resubmits:
            jobs = ", ".join(job["job_id"] for job in ledger.jobs)
            raise FatalError(
                f"{self.hook.vendor} export {state.job_id} ended {word} ({reason}); "
                f"the resubmit budget of {self.resubmits} is spent (jobs: {jobs})"
            )
        self.log.warning(
            "%s export %s ended %s (%s): submitting again, resubmit %d of %d",
            self.hook.vendor,
            state.job_id,
            word,
            reason,
            ledger.resubmits + 1,
            self.resubmits,
        )
        return self._submit(ledger, request, resubmit=True)

    def _wait_out(self, ledger: JobLedger, foreign: ForeignJobRunning) -> NoReturn:
        """Defer on someone else's job (never cancelling it), then submit again."""
        waits = int(ledger.record.get("foreign_waits", 0)) + 1
        if waits > MAX_FOREIGN_WAITS:
            raise FatalError(f"{foreign}; still so after {MAX_FOREIGN_WAITS} waits: giving up")
        ledger.record["foreign_waits"] = waits
        ledger.save()
        self.log.warning(
            "%s export: %s. Waiting it out (it is never cancelled by us), then submitting again",
            self.hook.vendor,
            foreign,
        )
        self.defer(
            trigger=self._trigger(foreign.job_id, cancellable=False),
            method_name="resume_after_wait",
            timeout=dt.timedelta(seconds=float(self.wait_timeout) + DEADLINE_GRACE),
        )
        raise AssertionError("unreachable: defer() raises")

    def _trigger(self, job_id: str, *, cancellable: bool = True) -> ExportStatusTrigger:
        return self.trigger_class(
            conn_id=self.conn_id,
            job_id=job_id,
            deadline=time.time() + float(self.wait_timeout),
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            stall_timeout=self.stall_timeout,
            cancel_on_timeout=self.cancel_on_timeout and cancellable,
            cancellable=cancellable,
        )

    def _defer_until_done(self, state: ExportState) -> None:
        self.log.info(
            "%s export %s is %s: deferring until it is done (no worker slot held)",
            self.hook.vendor,
            state.job_id,
            state.raw_status,
        )
        self.defer(
            trigger=self._trigger(state.job_id),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=float(self.wait_timeout) + DEADLINE_GRACE),
        )

    def _download(self, context: Context, ledger: JobLedger, state: ExportState) -> RawObject:
        raw = self.fetch(self.partition(context))
        raw["jobs"] = [dict(job) for job in ledger.jobs]
        raw["resubmit_budget"] = self.resubmits
        rows = state.details.get("rows")
        raw["vendor_rows"] = rows if isinstance(rows, int) and not isinstance(rows, bool) else None
        raw["produced_at"] = state.details.get("produced_at")
        return raw

    @contextmanager
    def open_download(self) -> Iterator[Download]:
        """Each attempt reads the job again, so an expired link is replaced by a fresh one."""
        assert self._job_id is not None
        state = self.hook.get_export_state(self._job_id)
        if not state.phase.is_successful:
            raise JobEndedError(state)
        try:
            with self.hook.open_download(state, self.download_options()) as download:
                yield download
        except VendorResponseError as exc:
            if self.hook.is_expired_link(exc):
                raise ExpiredLinkError(f"the download link of {state.job_id} expired") from None
            raise

    # -- long waits: deferred, not slept -------------------------------------------------

    def _unless_long_wait(self, ledger: JobLedger, step: Callable[[], T]) -> T:
        try:
            return step()
        except LongWaitRequested as wait:
            waits = int(ledger.record.get("deferred_waits", 0)) + 1
            if waits > MAX_DEFERRED_WAITS:
                raise ExportError(f"{wait}; gave up after {MAX_DEFERRED_WAITS} waits") from None
            ledger.record["deferred_waits"] = waits
            ledger.save()
            delay = float(wait.retry_after or self.worker_sleep_limit)
            self.log.warning("%s: waiting %.0f s deferred (no worker slot held)", wait, delay)
            from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

            self.defer(
                trigger=TimeDeltaTrigger(dt.timedelta(seconds=delay)),
                method_name="resume_after_wait",
            )
            raise AssertionError("unreachable: defer() raises") from None
