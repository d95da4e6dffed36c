"""One durable export task per vendor (and Maxsight's synchronous fetch), for dag.test()."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from compliance_exports.vendors.maxsight.operators import MaxsightAuditExportToS3Operator
from compliance_exports.vendors.oleria.operators import OleriaExportOperator
from compliance_exports.vendors.sailpoint.operators import SailPointReportOperator
from compliance_exports.vendors.veza.operators import VezaAccessReviewExportOperator
from include.simulators.clock import at, days_ago

LAKE = {"bucket": "compliance-lake", "aws_conn_id": "aws_lake", "day": "{{ ds }}"}
WAIT = {"poll_interval": 0.2, "wait_timeout": 120}

with DAG(
    dag_id="export_lifecycle",
    schedule=None,
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 0},
) as dag:
    OleriaExportOperator(
        task_id="oleria_export",
        context="accessInventoryIdentitiesV2",
        dataset="identities",
        **WAIT,
        **LAKE,
    )
    VezaAccessReviewExportOperator(
        task_id="veza_export", certification_id="cert-q4", dataset="access_review", **WAIT, **LAKE
    )
    SailPointReportOperator(
        task_id="sailpoint_export",
        report_type="IDENTITIES_DETAILS",
        arguments={"correlatedOnly": True},
        dataset="identities",
        **WAIT,
        **LAKE,
    )
    MaxsightAuditExportToS3Operator(
        task_id="maxsight_fetch",
        dataset="audit_events",
        range_start=at(days_ago(30)),  # the simulator's whole default event store
        range_end=at(days_ago(0), "23:59:59.999"),
        **LAKE,
    )
