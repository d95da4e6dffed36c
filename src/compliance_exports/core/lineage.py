"""OpenLineage datasets of the export and land tasks (docs/DESIGN.md, "Lineage").

The task classes implement ``get_openlineage_facets_on_complete``, which the OpenLineage
provider's listener calls when a task ends; this module builds what they return:

* an export (fetch) task reads the **vendor export** (namespace ``<vendor>://<host>`` of
  the vendor API it came from, name the registry ``dataset``) and writes the **raw
  object** (``s3://<bucket>``, its key) with its size and the vendor's row count;
* a land task reads that raw object and writes the **curated partition**
  (``s3://<bucket>``, ``[<prefix>/]curated/vendor=<v>/dataset=<d>/dt=<day>``) with the
  Parquet schema, the row count, size and file count, and the published version; a
  keyed snapshot also writes its ``dataset=<d>__changes`` partition, read from the
  earlier day it was compared with.

Everything comes from what the finished task returned or wrote (a RawObject, the
version's manifest): a deferred export resumes in a new operator instance, so nothing
set before the deferral is used. The provider is optional (the wheel does not depend on
it): nothing here imports it until a listener asks, and without it
:func:`openlineage_available` is false and the tasks report nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset


def openlineage_available() -> bool:
    """Whether the OpenLineage provider (and its client) can be imported."""
    try:
        import airflow.providers.openlineage.extractors  # noqa: F401
        import openlineage.client.event_v2  # noqa: F401
    except ImportError:
        return False
    return True


def vendor_namespace(vendor: str, source_uri: str) -> str:
    """``<vendor>://<host[:port]>`` of the vendor API ``source_uri`` is on: one namespace
    per vendor tenant, whatever endpoint served the file."""
    return f"{vendor}://{urlsplit(source_uri).netloc or 'unknown'}"


def s3_namespace(bucket: str) -> str:
    """The OpenLineage namespace of a bucket's datasets."""
    return f"s3://{bucket}"


def s3_name(key: str) -> str:
    """An S3 dataset name: the key (or prefix) without slashes at either end."""
    return key.strip("/")


def vendor_export(vendor: str, dataset: str, source_uri: str) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=vendor_namespace(vendor, source_uri), name=dataset)


def raw_object_input(raw: Mapping[str, Any]) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=s3_namespace(str(raw["bucket"])), name=s3_name(str(raw["key"])))


def raw_object_output(raw: Mapping[str, Any]) -> OutputDataset:
    """The raw object a fetch wrote: its size, and the vendor's row count where it gave one."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    rows = raw.get("vendor_rows")
    return OutputDataset(
        namespace=s3_namespace(str(raw["bucket"])),
        name=s3_name(str(raw["key"])),
        outputFacets={
            "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(
                rowCount=rows if isinstance(rows, int) else None,
                size=int(raw["size"]),
                fileCount=1,
            )
        },
    )


def fetch_lineage(fetched: Sequence[tuple[str, Mapping[str, Any]]]) -> OperatorLineage:
    """What a fetch task read and wrote: ``fetched`` is each download's
    ``(source_uri, RawObject)`` (a PDF batch lands several)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs: dict[tuple[str, str], InputDataset] = {}
    for source_uri, raw in fetched:
        dataset = vendor_export(str(raw["vendor"]), str(raw["dataset"]), source_uri)
        inputs.setdefault((dataset.namespace, dataset.name), dataset)
    return OperatorLineage(
        inputs=list(inputs.values()),
        outputs=[raw_object_output(raw) for _, raw in fetched],
    )


def parquet_type(declared: str) -> str:
    """The Parquet (Arrow) type a manifest's column type is written as, e.g.
    ``timestamp[us, tz=UTC]`` for ``timestamp``."""
    from compliance_exports.landing.schema import ColumnType

    try:
        return str(ColumnType.parse(declared).arrow_type)
    except (ValueError, TypeError):
        return declared


def curated_partition(bucket: str, prefix: str, manifest: Mapping[str, Any]) -> OutputDataset:
    """A published partition version, from its manifest: the schema of its Parquet parts
    (none for a PDF, which lands as evidence only), its version, rows, bytes and files."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import dataset_version_dataset as version
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats
    from openlineage.client.facet_v2 import schema_dataset as schema

    parts = list(manifest.get("parts") or [])
    facets: dict[str, Any] = {
        "version": version.DatasetVersionDatasetFacet(datasetVersion=str(manifest["version"]))
    }
    if parts:
        facets["schema"] = schema.SchemaDatasetFacet(
            fields=[
                schema.SchemaDatasetFacetFields(
                    name=str(column["name"]),
                    type=parquet_type(str(column["type"])),
                    ordinal_position=position,
                )
                for position, column in enumerate(manifest.get("schema") or [], start=1)
            ]
        )
    return OutputDataset(
        namespace=s3_namespace(bucket),
        name=s3_name(prefix),
        facets=facets,
        outputFacets={
            "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(
                rowCount=int(manifest["rows"]),
                size=sum(int(part["bytes"]) for part in parts),
                fileCount=len(parts),
            )
        },
    )


def land_lineage(
    raw: Mapping[str, Any],
    published: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    bucket: str,
    compared: Sequence[str] = (),
) -> OperatorLineage:
    """What a land task read and wrote: the raw object in, each ``(partition prefix,
    manifest)`` it ``published`` out (the day's partition; for a keyed snapshot also its
    ``__changes`` partition, for which it read the ``compared`` earlier partitions'
    prefixes). A task that failed before publishing reports its input alone."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset

    inputs = [raw_object_input(raw)]
    inputs += [InputDataset(namespace=s3_namespace(bucket), name=s3_name(p)) for p in compared]
    return OperatorLineage(
        inputs=inputs,
        outputs=[curated_partition(bucket, prefix, manifest) for prefix, manifest in published],
    )
