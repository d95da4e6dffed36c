"""Durable exports whose tries go wrong on purpose, for ``dag.test()``.

* ``crash_after_submit``: the first try dies right after the job id is saved (a lost
  worker); the retry must re-attach to that job through the real ``task_state_store``.
* ``heal``: a plain export; the test arms a job failure so that the first job ends
  ``failed`` and the task submits again inside the same try, deferring twice.
* ``fresh_crash``: ``crash_after_submit`` with the trigger form's ``fresh_export`` on:
  the fresh job is submitted once, and the retry re-attaches to it.
* ``long_wait``: a worker sleeps at most 1 s for a ``Retry-After``; the test makes the
  vendor ask for 3 s, which the task must spend deferred.
* ``ambiguous``: a plain export whose submission the test answers 500 (the vendor may
  have created a job): the task fails at once, without a retry, saying so.
* ``veza_expired``: a Veza export the test expires once it is FINISHED: exported again in
  the same try, the re-export waited out deferred.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG

from compliance_exports.core.ledger import JobLedger
from compliance_exports.core.states import ExportState
from compliance_exports.vendors.oleria.operators import OleriaExportOperator
from compliance_exports.vendors.veza.operators import VezaAccessReviewExportOperator

LAKE = {"bucket": "compliance-lake", "aws_conn_id": "aws_lake", "day": "{{ ds }}"}


class CrashAfterSubmit(OleriaExportOperator):
    """Submits, then fails the first try as a lost worker would."""

    def _submit(self, ledger: JobLedger, request: Any, *, resubmit: bool) -> ExportState:
        state = super()._submit(ledger, request, resubmit=resubmit)
        if ledger.try_number == 1:
            raise RuntimeError("worker lost right after submitting")
        return state


with DAG(
    dag_id="export_retry",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    catchup=False,
) as dag:
    common: dict[str, Any] = {
        "context": "accessInventoryIdentitiesV2",
        "poll_interval": 0.2,
        "retries": 1,
        "retry_delay": dt.timedelta(0),
        **LAKE,
    }
    CrashAfterSubmit(task_id="crash_after_submit", dataset="crashed", **common)
    OleriaExportOperator(task_id="heal", dataset="healed", **common)
    CrashAfterSubmit(task_id="fresh_crash", dataset="fresh", fresh_export=True, **common)
    OleriaExportOperator(task_id="long_wait", dataset="waited", worker_sleep_limit=1, **common)
    OleriaExportOperator(task_id="ambiguous", dataset="ambiguous", **common)
    VezaAccessReviewExportOperator(
        task_id="veza_expired",
        certification_id="cert-q4",
        dataset="access_review",
        poll_interval=0.2,
        retries=1,
        retry_delay=dt.timedelta(0),
        **LAKE,
    )
