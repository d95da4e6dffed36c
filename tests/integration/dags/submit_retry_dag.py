"""A submit task that dies right after submitting on its first try, for ``dag.test()``.

The retry must re-attach to the job the first try stored in ``task_state_store``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Context

from compliance_exports.vendors.oleria.operators import OleriaDownloadOperator


class SubmitThenCrash(OleriaDownloadOperator):
    """Submits, then fails the first try as a lost worker would."""

    def execute(self, context: Context) -> dict[str, Any]:
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost right after submitting")
        return result


with DAG(
    dag_id="submit_retry",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    catchup=False,
) as dag:
    SubmitThenCrash(
        task_id="oleria_submit",
        context="accessInventoryIdentitiesV2",
        retries=1,
        retry_delay=dt.timedelta(0),
    )
