"""Land a Maxsight audit events export (CSV or PDF) in the raw zone: fetch only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from compliance_exports.core.errors import ExportValidationError
from compliance_exports.core.fetch import ExportFetchOperator
from compliance_exports.core.hooks import Download
from compliance_exports.vendors.maxsight.hook import EXPORT_PATH, MaxsightHook
from compliance_exports.vendors.maxsight.query import AuditExportQuery

QUERY_FIELDS = (
    "range_start",
    "range_end",
    "auditee_id",
    "event_type",
    "sub_type",
    "system_source",
    "metadata",
    "file_type",
    "locale",
    "timezone",
)


def as_instant(name: str, value: Any) -> dt.datetime | None:
    """A range bound from a datetime or an ISO-8601 string (templates render strings)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ExportValidationError(name, f"{value!r} is not an ISO-8601 instant") from None


class MaxsightAuditExportToS3Operator(ExportFetchOperator):
    """``GET /v5/audit-sentinel/events/export`` streamed straight into the raw zone.

    Synchronous by nature (the answer is the file), with the same transport, retries and
    streaming as the job-based fetches. The query is validated before any request; a PDF
    over Maxsight's 5,000-event limit is refused by Maxsight with 400 (no count endpoint
    exists to check beforehand), which fails the task with Maxsight's message.
    """

    hook_class = MaxsightHook
    template_fields = (*ExportFetchOperator.template_fields, *QUERY_FIELDS)

    def __init__(
        self,
        *,
        range_start: str | dt.datetime | None = None,
        range_end: str | dt.datetime | None = None,
        auditee_id: Sequence[str] = (),
        event_type: Sequence[str] = (),
        sub_type: Sequence[str] = (),
        system_source: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
        file_type: str = "csv",
        locale: str = "en",
        timezone: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.range_start = range_start
        self.range_end = range_end
        self.auditee_id = auditee_id
        self.event_type = event_type
        self.sub_type = sub_type
        self.system_source = system_source
        self.metadata = metadata
        self.file_type = file_type
        self.locale = locale
        self.timezone = timezone
        self._query: AuditExportQuery | None = None

    def validate(self) -> None:
        super().validate()
        self._query = AuditExportQuery(
            range_start=as_instant("range_start", self.range_start),
            range_end=as_instant("range_end", self.range_end),
            auditee_id=tuple(self.auditee_id),
            event_type=tuple(self.event_type),
            sub_type=tuple(self.sub_type),
            system_source=tuple(self.system_source),
            metadata=dict(self.metadata or {}),
            file_type=self.file_type,
            locale=self.locale,
            timezone=self.timezone,
        )

    def vendor_request(self) -> dict[str, Any]:
        assert self._query is not None, "validate() runs first"
        return {"path": EXPORT_PATH, "query": [list(pair) for pair in self._query.to_params()]}

    @contextmanager
    def open_download(self) -> Iterator[Download]:
        assert self._query is not None, "validate() runs first"
        hook = self.hook
        assert isinstance(hook, MaxsightHook)
        with hook.open_export(self._query) as download:
            yield download
