"""Veza access review export: one durable export task (create, wait deferred, download)."""

from __future__ import annotations

from typing import Any

from compliance_exports.core.export import ExportOperator
from compliance_exports.vendors.veza.hook import VezaHook
from compliance_exports.vendors.veza.triggers import VezaAccessReviewExportTrigger
from compliance_exports.vendors.veza.validation import FORMAT_CSV, validate_access_review_export

OPTIONAL_FIELDS = ("previous_certification_id", "title", "filter", "mutable_filter", "order_by")


class VezaAccessReviewExportOperator(ExportOperator):
    """``access_review:create`` for one certification, CSV (``format=0``) or XLSX (``6``).

    Every argument is checked (format, ids, title length, both SCIM filters, order_by)
    before the request is sent. An export that ends FAILED or CANCELLED, or whose file
    is gone (EXPIRED) before it was downloaded, is created again within ``resubmits``,
    deferred like the first: no wait holds a worker slot.
    """

    hook_class = VezaHook
    trigger_class = VezaAccessReviewExportTrigger
    template_fields = (*ExportOperator.template_fields, "certification_id", *OPTIONAL_FIELDS)

    def __init__(
        self,
        *,
        certification_id: str,
        format: int = FORMAT_CSV,
        previous_certification_id: str | None = None,
        title: str | None = None,
        filter: str | None = None,
        mutable_filter: str | None = None,
        order_by: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.certification_id = certification_id
        self.format = format
        self.previous_certification_id = previous_certification_id
        self.title = title
        self.filter = filter
        self.mutable_filter = mutable_filter
        self.order_by = order_by

    def build_request(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) or None for name in OPTIONAL_FIELDS}
        validate_access_review_export(
            format=self.format, certification_id=self.certification_id, **fields
        )
        request = {"format": self.format, "certification_id": self.certification_id}
        return request | {name: value for name, value in fields.items() if value is not None}

    def download_options(self) -> dict[str, Any]:
        """The file's kind comes from the request (a response's ``format`` may be a number,
        a name or absent); the download's Content-Type or bytes confirm it."""
        return {"format": self.format}
