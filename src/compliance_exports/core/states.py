"""Typed export states and trigger events, shared by every vendor.

A vendor adapter maps its own status words to an :class:`ExportPhase` through a
:class:`StatusMap`; nothing outside the adapter compares raw status strings, and a
word the map does not know raises :class:`UnknownStatusError` (never success).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypedDict

from compliance_exports.core.errors import UnknownStatusError


class ExportPhase(StrEnum):
    """Where a remote export job is in its life, whatever the vendor calls it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self not in (ExportPhase.PENDING, ExportPhase.RUNNING)

    @property
    def is_successful(self) -> bool:
        return self is ExportPhase.SUCCEEDED


@dataclass(frozen=True)
class ExportState:
    """One observation of a remote export job.

    ``raw_status`` is the vendor's word; ``progress`` is whatever progress marker the
    vendor reports (used to tell a slow job from a stalled one); ``download_url`` is
    set when the vendor hands out a link to the file.
    """

    job_id: str
    phase: ExportPhase
    raw_status: str
    message: str | None = None
    download_url: str | None = None
    progress: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportState:
        try:
            return cls(
                job_id=str(data["job_id"]),
                phase=ExportPhase(data["phase"]),
                raw_status=str(data["raw_status"]),
                message=data.get("message"),
                download_url=data.get("download_url"),
                progress=data.get("progress"),
                details=dict(data.get("details") or {}),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"not an export state: {exc}") from None

    def public_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the download link (a presigned URL is a bearer secret)."""
        data = self.to_dict()
        data["download_url"] = None
        return data

    @property
    def fingerprint(self) -> tuple[str, str | None]:
        """What must change for the job to count as moving (status word and progress)."""
        return (self.raw_status, self.progress)


@dataclass(frozen=True)
class StatusMap:
    """A vendor's status vocabulary: raw word -> phase.

    ``strip_prefix`` tolerates decorated words (``EXPORT_STATUS_FINISHED``); matching is
    case-insensitive because vendors are not consistent about case.
    """

    vendor: str
    phases: Mapping[str, ExportPhase]
    strip_prefix: str = ""

    def phase_of(self, raw_status: Any) -> ExportPhase:
        word = str(raw_status or "").strip().upper()
        if self.strip_prefix and word.startswith(self.strip_prefix.upper()):
            word = word[len(self.strip_prefix) :]
        for known, phase in self.phases.items():
            if known.upper() == word:
                return phase
        raise UnknownStatusError(str(raw_status), vendor=self.vendor, known=tuple(self.phases))


EventStatus = Literal["success", "failed", "timeout", "error"]


class ExportEvent(TypedDict, total=False):
    """The one terminal payload an :class:`ExportStatusTrigger` yields (JSON only)."""

    status: EventStatus
    job_id: str
    message: str
    state: dict[str, Any] | None
    cancelled: bool


def vendor_instant(value: Any, plus_ms: Any = None) -> str | None:
    """A vendor's timestamp as an aware ISO-8601 string (UTC when it names no offset),
    ``plus_ms`` milliseconds later when given; ``None`` when absent or unreadable (a
    time the vendor gives is a fact for the manifest, never a reason to fail)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if isinstance(plus_ms, int | float) and not isinstance(plus_ms, bool):
        moment += dt.timedelta(milliseconds=plus_ms)
    return moment.astimezone(dt.UTC).isoformat()
