"""A tiny simulator of Acme's audit log export API, for the fifth vendor's tests.

Its rules are its own reading of the API, written without the client (it imports
nothing from ``compliance_exports``): a client bug then shows up as a refused or
misread answer instead of being mirrored. Only the generic server helpers of
``include.simulators.base`` are shared (uvicorn in a thread, a free loopback port).

* ``POST /api/exports {"dataset", "since", "until", "include_system"?}`` -> 202
  ``{"job": {"id", "state": "queued", ...}}``; a bad body -> 400, a wrong key -> 401,
  both ``{"error": {"code", "message"}}``;
* ``GET /api/exports/{id}`` -> ``queued`` for the first third of ``latency``, then
  ``running``, then ``done`` (or ``error``, see :meth:`AcmeSimulator.fail_first_job_of`);
* ``GET /api/exports/{id}/file`` -> the CSV (409 until the job is done);
* ``GET /api/exports?dataset=&since=&until=&submitted_after=`` -> ``{"jobs": [...]}``,
  the jobs of that request submitted after the given ISO-8601 time (each with its
  ``include_system`` and ``submitted_at``).

:meth:`AcmeSimulator.lose_next_answer` makes the next submission create its job and
then answer 500, as a gateway that lost the vendor's answer would.

The CSV is deterministic: one candidate event every 10 minutes of ``[since, until)``
(aligned to the epoch), kept when a hash of (dataset, time) says so; ``system`` events
only with ``include_system``. Every job records its row count (``jobs[id]["rows"]``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from include.simulators.base import SimulatorServer

DATASETS = ("admin", "api", "login")
COLUMNS = ("event_id", "occurred_at", "actor", "action", "target", "success")
STEP = dt.timedelta(minutes=10)
ACTORS = ("alice", "bob", "carol", "dave", "system")
ACTIONS = {
    "admin": ("role.grant", "role.revoke", "user.create", "user.disable"),
    "api": ("token.create", "token.revoke", "key.rotate"),
    "login": ("login.success", "login.failure", "logout"),
}


@dataclass
class AcmeSimulator:
    """The Acme API on a free loopback port; its jobs and request log are readable here."""

    api_key: str = "acme-test-key"
    latency: float = 0.6  # seconds from submit to a terminal state
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _failing: set[str] = field(default_factory=set)
    _lose_answers: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: SimulatorServer | None = None

    # -- for the tests ---------------------------------------------------------------

    def start(self) -> AcmeSimulator:
        self._server = SimulatorServer(self.app()).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return self._server.base_url

    def connection(self) -> dict[str, Any]:
        return {"conn_type": "acme", "host": self.base_url, "password": self.api_key}

    def fail_first_job_of(self, dataset: str) -> None:
        """The next job submitted for ``dataset`` ends ``error`` (the switch then resets)."""
        with self._lock:
            self._failing.add(dataset)

    def lose_next_answer(self) -> None:
        """The next submission creates its job, then answers 500 (its answer is lost)."""
        with self._lock:
            self._lose_answers += 1

    def reset(self) -> None:
        with self._lock:
            self.jobs.clear()
            self.requests.clear()
            self._failing.clear()
            self._lose_answers = 0

    # -- the API -------------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI(title="Acme audit log exports (simulator)")

        @app.middleware("http")
        async def log_and_authenticate(request: Request, call_next: Any) -> Response:
            body = (await request.body()).decode("utf-8", "replace")
            entry: dict[str, Any] = {
                "method": request.method,
                "path": request.url.path,
                "body": body,
            }
            with self._lock:
                self.requests.append(entry)
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                response: Response = _error(401, "unauthenticated", "a valid API key is required")
            else:
                response = await call_next(request)
            entry["status"] = response.status_code
            return response

        @app.post("/api/exports")
        async def submit(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "invalid_request", "the body is not JSON")
            problem = _problem(body)
            if problem:
                return _error(400, "invalid_request", problem)
            job = self._submit(body)
            with self._lock:
                lost, self._lose_answers = self._lose_answers > 0, max(0, self._lose_answers - 1)
            if lost:
                return _error(500, "internal", "upstream answer lost")
            return JSONResponse({"job": job}, status_code=202)

        @app.get("/api/exports")
        async def listing(dataset: str, since: str, until: str, submitted_after: str) -> Response:
            try:
                after = dt.datetime.fromisoformat(submitted_after).timestamp()
            except ValueError:
                return _error(400, "invalid_request", "submitted_after is not ISO-8601")
            with self._lock:
                found = [
                    job["id"]
                    for job in self.jobs.values()
                    if (job["dataset"], job["since"], job["until"]) == (dataset, since, until)
                    and job["submitted_at"] >= after
                ]
            jobs = [self._listed(job_id) for job_id in found]
            return JSONResponse({"jobs": jobs})

        @app.get("/api/exports/{job_id}")
        async def status(job_id: str) -> Response:
            job = self._job(job_id)
            if job is None:
                return _error(404, "not_found", f"no export {job_id}")
            return JSONResponse({"job": job})

        @app.get("/api/exports/{job_id}/file")
        async def download(job_id: str) -> Response:
            job = self._job(job_id)
            if job is None:
                return _error(404, "not_found", f"no export {job_id}")
            if job["state"] != "done":
                return _error(409, "not_ready", f"export {job_id} is {job['state']}")
            text = render_csv(
                job["dataset"], job["since"], job["until"], self.jobs[job_id]["include_system"]
            )
            return Response(
                text.encode(),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{job_id}.csv"'},
            )

        return app

    def _submit(self, body: dict[str, Any]) -> dict[str, Any]:
        dataset, include_system = body["dataset"], bool(body.get("include_system", False))
        with self._lock:
            job_id = f"acme-job-{len(self.jobs) + 1:04d}"
            fails = dataset in self._failing
            self._failing.discard(dataset)
            self.jobs[job_id] = {
                "id": job_id,
                "state": "queued",
                "dataset": dataset,
                "since": body["since"],
                "until": body["until"],
                "include_system": include_system,
                "rows": len(audit_rows(dataset, body["since"], body["until"], include_system)),
                "submitted_at": time.time(),
                "fails": fails,
            }
        return self._public(self.jobs[job_id])

    def _job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            age = time.time() - job["submitted_at"]
            if age >= self.latency:
                job["state"] = "error" if job["fails"] else "done"
            elif age >= self.latency / 3:
                job["state"] = "running"
            return self._public(job)

    def _listed(self, job_id: str) -> dict[str, Any]:
        shown = self._job(job_id)
        assert shown is not None
        job = self.jobs[job_id]
        submitted = dt.datetime.fromtimestamp(job["submitted_at"], dt.UTC).isoformat()
        return {**shown, "include_system": job["include_system"], "submitted_at": submitted}

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        shown = {k: job[k] for k in ("id", "state", "dataset", "since", "until")}
        if job["state"] == "error":
            shown["error"] = {"code": "export_failed", "message": "the audit store timed out"}
        if job["state"] == "done":
            shown["rows"] = job["rows"]
        return shown


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _problem(body: Any) -> str | None:
    """What is wrong with a submitted body, in the simulator's own words (None: nothing)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = sorted(set(body) - {"dataset", "since", "until", "include_system"})
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    if body.get("dataset") not in DATASETS:
        return f"dataset must be one of {', '.join(DATASETS)}"
    if not isinstance(body.get("include_system", False), bool):
        return "include_system must be a boolean"
    try:
        since, until = _instant(body.get("since")), _instant(body.get("until"))
    except ValueError as exc:
        return str(exc)
    return None if since < until else "since must be before until"


def _instant(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ValueError(f"{value!r} is not a UTC timestamp ending in Z")
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def audit_rows(dataset: str, since: str, until: str, include_system: bool) -> list[list[str]]:
    """The events of ``dataset`` in ``[since, until)``: the same for the same arguments."""
    start, end = _instant(since), _instant(until)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    at = epoch + -(-(start - epoch) // STEP) * STEP  # the first grid point >= start
    rows = []
    while at < end:
        digest = hashlib.sha256(f"{dataset}|{at.isoformat()}".encode()).digest()
        actor = ACTORS[digest[1] % len(ACTORS)]
        if digest[0] < 160 and (include_system or actor != "system"):
            actions = ACTIONS[dataset]
            rows.append(
                [
                    digest[:8].hex(),
                    at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    actor,
                    actions[digest[2] % len(actions)],
                    f"resource-{digest[3] % 50:02d}",
                    "true" if digest[4] % 5 else "false",
                ]
            )
        at += STEP
    return rows


def render_csv(dataset: str, since: str, until: str, include_system: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(audit_rows(dataset, since, until, include_system))
    return out.getvalue()
