"""Lineage of a fetch: the vendor endpoint in, the raw S3 object out.

Reported through Airflow's hook-lineage collector, which OpenLineage (and any other
lineage reader) consumes when installed; without a reader the collector is a no-op.
``get_openlineage_facets_on_complete`` is not implemented: its return type
(``OperatorLineage``) lives in the OpenLineage provider, which this project does not
install, and the common-compat facets are no-ops without the OpenLineage client.
"""

from __future__ import annotations

from typing import Any


def record_fetch_lineage(hook: Any, *, source_uri: str, target_uri: str) -> None:
    """Tell Airflow's lineage collector that ``hook`` copied ``source_uri`` to ``target_uri``."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    if source_uri:
        collector.add_input_asset(context=hook, uri=source_uri)
    collector.add_output_asset(context=hook, uri=target_uri)
