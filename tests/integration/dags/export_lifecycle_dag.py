"""Every vendor's submit -> wait -> fetch in one small DAG, for ``dag.test()``.

Connections (``<vendor>_default``, ``aws_lake``) come from the test's environment.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator
from compliance_exports.vendors.oleria.operators import (
    OleriaDownloadOperator,
    OleriaDownloadToS3Operator,
)
from compliance_exports.vendors.oleria.sensors import OleriaDownloadSensor
from compliance_exports.vendors.sailpoint.operators import (
    SailPointReportOperator,
    SailPointReportToS3Operator,
)
from compliance_exports.vendors.sailpoint.sensors import SailPointReportSensor
from compliance_exports.vendors.veza.operators import (
    VezaAccessReviewExportOperator,
    VezaAccessReviewToS3Operator,
)
from compliance_exports.vendors.veza.sensors import VezaAccessReviewExportSensor
from include.simulators.clock import at, days_ago

LAKE = {"bucket": "compliance-lake", "aws_conn_id": "aws_lake", "day": "{{ ds }}"}
WAIT = {"poll_interval": 0.2, "timeout": 120}

with DAG(
    dag_id="export_lifecycle",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 0},
) as dag:
    oleria = OleriaDownloadOperator(task_id="oleria_submit", context="accessInventoryIdentitiesV2")
    oleria_wait = OleriaDownloadSensor(
        task_id="oleria_wait", job_id=oleria.output["job_id"], **WAIT
    )
    oleria_fetch = OleriaDownloadToS3Operator(
        task_id="oleria_fetch", submission=oleria.output, dataset="identities", **LAKE
    )
    oleria >> oleria_wait >> oleria_fetch

    veza = VezaAccessReviewExportOperator(task_id="veza_submit", certification_id="cert-q4")
    veza_wait = VezaAccessReviewExportSensor(
        task_id="veza_wait", job_id=veza.output["job_id"], **WAIT
    )
    veza_fetch = VezaAccessReviewToS3Operator(
        task_id="veza_fetch", submission=veza.output, dataset="access_review", **LAKE
    )
    veza >> veza_wait >> veza_fetch

    sailpoint = SailPointReportOperator(
        task_id="sailpoint_submit",
        report_type="IDENTITIES_DETAILS",
        arguments={"correlatedOnly": True},
    )
    sailpoint_wait = SailPointReportSensor(
        task_id="sailpoint_wait", job_id=sailpoint.output["job_id"], **WAIT
    )
    sailpoint_fetch = SailPointReportToS3Operator(
        task_id="sailpoint_fetch", submission=sailpoint.output, dataset="identities", **LAKE
    )
    sailpoint >> sailpoint_wait >> sailpoint_fetch

    MaxsightAuditExportToS3Operator(
        task_id="maxsight_fetch",
        dataset="audit_events",
        range_start=at(days_ago(30)),  # the simulator's whole default event store
        range_end=at(days_ago(0), "23:59:59.999"),
        **LAKE,
    )
