"""The job ledger: which remote job a task is following, kept in ``task_state_store``.

Airflow 3.3's ``context["task_state_store"]`` is scoped to one task instance (DAG run,
task, map index), survives retries and a Clear, and expires after the state store's
retention. The ledger stores one JSON record under one key::

    {"request_sha256": "...",          # the request the jobs were submitted for
     "job_id": "...",                  # the job followed now
     "fresh_for_clear": 2,             # the Clear generation a fresh export was made for
     "jobs": [{"job_id", "submitted_at", "clear_number", "try_number",
               "resubmit", "ended"?, "reason"?}, ...]}

so a retry or a Clear re-attaches to the job an earlier try started (never a second
remote job for one intent), a terminal failure is resubmitted within a budget per try
(counted from the jobs this try submitted again), and the manifest can tell every
job's story.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict


class JobRecord(TypedDict, total=False):
    """One remote job a task submitted (or adopted), as the manifest shows it."""

    job_id: str
    submitted_at: str
    clear_number: int
    try_number: int
    resubmit: bool
    ended: str  # the vendor's terminal word, for a job that ended without a file
    reason: str
    done_at: str  # when the vendor reported the job done (its terminal state was seen)


def request_fingerprint(request: Mapping[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class JobLedger:
    """The ledger of one task instance; ``store`` is ``None`` outside Airflow (no memory)."""

    store: Any
    key: str
    fingerprint: str
    clear_number: int = 0
    try_number: int = 0
    record: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, context: Mapping[str, Any], key: str, request: Mapping[str, Any]) -> JobLedger:
        store = context.get("task_state_store")
        dag_run = context.get("dag_run")
        ti = context.get("ti")
        ledger = cls(
            store=store,
            key=key,
            fingerprint=request_fingerprint(request),
            clear_number=int(getattr(dag_run, "clear_number", 0) or 0),
            try_number=int(getattr(ti, "try_number", 0) or 0),
        )
        saved = store.get(key) if store is not None else None
        if isinstance(saved, dict):
            ledger.record = dict(saved)
        return ledger

    @property
    def durable(self) -> bool:
        return self.store is not None

    @property
    def job_id(self) -> str | None:
        value = self.record.get("job_id")
        return str(value) if value else None

    @property
    def jobs(self) -> list[JobRecord]:
        return [JobRecord(**job) for job in self.record.get("jobs", [])]

    @property
    def resubmits(self) -> int:
        """Resubmissions made by this try (the budget is per try)."""
        return sum(
            1
            for job in self.record.get("jobs", [])
            if job.get("resubmit") and job.get("try_number") == self.try_number
        )

    @property
    def same_request(self) -> bool:
        return self.record.get("request_sha256") == self.fingerprint

    def wants_fresh_export(self, fresh_export: bool) -> bool:
        """A fresh export was asked for and not yet made in this Clear generation.

        Retries of the same generation re-attach to the fresh job instead of making another.
        """
        return fresh_export and self.record.get("fresh_for_clear") != self.clear_number

    def start_over(self, *, fresh_export: bool) -> None:
        """Forget the followed job (kept in the history of the same request)."""
        history = self.record.get("jobs", []) if self.same_request else []
        self.record = {"request_sha256": self.fingerprint, "jobs": history}
        if fresh_export:
            self.record["fresh_for_clear"] = self.clear_number
        self.save()

    def submitted(self, job_id: str, *, resubmit: bool = False) -> None:
        """Record a new job: saved before the task defers, so no later try submits again."""
        self.record["request_sha256"] = self.fingerprint
        self.record["job_id"] = job_id
        job = JobRecord(
            job_id=job_id,
            submitted_at=_now(),
            clear_number=self.clear_number,
            try_number=self.try_number,
            resubmit=resubmit,
        )
        self.record["jobs"] = [*self.record.get("jobs", []), dict(job)]
        self.save()

    def done(self, job_id: str) -> None:
        """Note when the vendor reported ``job_id`` done (the first time we saw it so)."""
        for job in self.record.get("jobs", []):
            if job.get("job_id") == job_id and not job.get("done_at"):
                job["done_at"] = _now()
                self.save()

    def ended(self, job_id: str, word: str, reason: str) -> None:
        """Note that ``job_id`` ended without a usable file (FAILED, EXPIRED, ...)."""
        jobs = self.record.setdefault("jobs", [])
        known = [job for job in jobs if job.get("job_id") == job_id]
        if not known:  # a record of an earlier release (no history): start one
            known = [{"job_id": job_id}]
            jobs.insert(0, known[0])
        for job in known:
            job["ended"], job["reason"] = word, reason
        if self.record.get("job_id") == job_id:
            self.record["job_id"] = None
        self.save()

    def save(self) -> None:
        if self.store is not None:
            self.store.set(self.key, self.record)
