"""One deferrable task in the veza pool: the native stack tests trigger it over REST."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param
from stack_probe import WaitForFileOperator

with DAG(
    dag_id="stack_probe",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"signal_path": Param(type="string", description="file that ends the wait")},
    tags=["test"],
):
    WaitForFileOperator(
        task_id="wait_for_signal",
        signal_path="{{ params.signal_path }}",
        pool="veza",
        retries=0,
    )
