"""A deferred export's OpenLineage facets come from the instance that resumes it.

On a worker, the task that defers ends; the triggerer's event resumes it in a new
process, with a new operator instance, which downloads the file (``execute_complete``).
Here the two instances are made explicitly: the one that deferred knows no dataset,
the resumed one reports the vendor export in and the raw object out with the row
count the vendor's job reported.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from compliance_exports.vendors.sailpoint.operators import SailPointReportOperator
from include.simulators import RunningSimulator
from tests.conftest import LocalS3
from tests.integration.conftest import deferred_trigger, run_deferrable, run_trigger

pytestmark = pytest.mark.integration


def operator(s3: LocalS3) -> SailPointReportOperator:
    return SailPointReportOperator(
        task_id="export",
        dataset="identities",
        report_type="IDENTITIES_DETAILS",
        arguments={"correlatedOnly": True},
        bucket=s3.bucket,
        aws_conn_id=s3.conn_id,
        poll_interval=0.1,
    )


def test_the_resumed_instance_reports_what_it_landed(
    sailpoint: RunningSimulator, s3: LocalS3, context: dict[str, Any]
) -> None:
    deferring = operator(s3)
    [event] = run_trigger(deferred_trigger(deferring, context))
    assert deferring.get_openlineage_facets_on_complete(None) is None

    resumed = operator(s3)  # what the worker builds from the DAG file after the deferral
    raw = run_deferrable(resumed, context, resume=("execute_complete", event))
    lineage = resumed.get_openlineage_facets_on_complete(None)
    assert lineage is not None
    host = urlsplit(sailpoint.connection()["host"]).netloc
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (f"sailpoint://{host}", "identities")
    ]
    [output] = lineage.outputs
    assert (output.namespace, output.name) == (f"s3://{s3.bucket}", raw["key"])
    stats = output.outputFacets["outputStatistics"]
    assert (stats.rowCount, stats.size) == (raw["vendor_rows"], raw["size"])
    assert raw["vendor_rows"] == event["state"]["details"]["rows"] == 25
