"""Oleria downloads: one durable export task (submit or re-attach, wait deferred, land)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from compliance_exports.core.export import ExportOperator
from compliance_exports.vendors.oleria.filters import validate_download_request
from compliance_exports.vendors.oleria.hook import OleriaHook
from compliance_exports.vendors.oleria.triggers import OleriaDownloadTrigger


class OleriaExportOperator(ExportOperator):
    """``POST /v1/downloads`` for one ``context`` with optional ``filter_by`` / ``sort_by``.

    The request is validated against Oleria's catalogue and filter rules before anything
    is sent. The CSV is streamed from its presigned URL by a client that carries no
    Oleria credentials; an expired URL (403 AccessDenied) is replaced by polling the
    download again, and a download that ends ``failed``, or whose link stays expired, is
    submitted again within ``resubmits``.
    """

    hook_class = OleriaHook
    trigger_class = OleriaDownloadTrigger
    template_fields = (*ExportOperator.template_fields, "context", "filter_by", "sort_by")

    def __init__(
        self,
        *,
        context: str,
        filter_by: Sequence[Mapping[str, Any]] = (),
        sort_by: Sequence[Mapping[str, Any]] = (),
        extra_contexts: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.context = context
        self.filter_by = filter_by
        self.sort_by = sort_by
        self.extra_contexts = tuple(extra_contexts)

    def build_request(self) -> dict[str, Any]:
        validate_download_request(
            self.context, self.filter_by, self.sort_by, extra_contexts=self.extra_contexts
        )
        return {
            "context": self.context,
            "params": {"filterBy": list(self.filter_by), "sortBy": list(self.sort_by)},
        }
