"""A small REST client for a running local stack (``stack.json``): login, waits.

Used by the end-to-end tests and handy in a shell::

    from include.localstack.client import StackClient
    client = StackClient.from_file(".airflow/stack.json")
    client.wait_for_dags(["oleria_exports"])
    client.rest("GET", "/api/v2/dags/oleria_exports/dagRuns").json()

Every wait is bounded and fails with what it saw last (states, task instances, logs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

TERMINAL_RUN_STATES = frozenset({"success", "failed"})
T = TypeVar("T")


class StackWaitError(AssertionError):
    """A bounded wait on the local stack ran out; the message says what was seen last."""


def wait_until(
    what: str, probe: Callable[[], T | None], *, timeout: float, every: float = 2.0
) -> T:
    """Call ``probe`` until it returns something other than None, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise StackWaitError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class StackClient:
    """The api-server of a local stack, authenticated as the stack's admin login."""

    api_url: str
    login: Mapping[str, str]
    logs: str = ""
    _token: str | None = field(default=None, repr=False)

    @classmethod
    def from_stack(cls, stack: Mapping[str, Any]) -> StackClient:
        return cls(api_url=stack["api_url"], login=stack["login"], logs=stack.get("logs", ""))

    @classmethod
    def from_file(cls, path: str | Path) -> StackClient:
        return cls.from_stack(json.loads(Path(path).read_text()))

    def token(self) -> str:
        if self._token is None:
            resp = httpx.post(f"{self.api_url}/auth/token", json=dict(self.login), timeout=60)
            resp.raise_for_status()
            self._token = str(resp.json()["access_token"])
        return self._token

    def rest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One REST call with the admin's JWT (fetched again once if it expired)."""
        for _ in range(2):
            headers = {"Authorization": f"Bearer {self.token()}"}
            resp = httpx.request(
                method, f"{self.api_url}{path}", headers=headers, timeout=60, **kwargs
            )
            if resp.status_code != 401:
                return resp
            self._token = None
        return resp

    def get(self, path: str, **params: Any) -> Any:
        resp = self.rest("GET", path, params=params or None)
        resp.raise_for_status()
        return resp.json()

    def health(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=30)
        resp.raise_for_status()
        health: dict[str, Any] = resp.json()
        return health

    def wait_for_healthy(self, *, timeout: float = 180) -> dict[str, Any]:
        """Wait until the metadatabase, scheduler, triggerer and dag-processor are healthy."""
        last: dict[str, Any] = {}

        def probe() -> dict[str, Any] | None:
            nonlocal last
            last = self.health()
            unhealthy = [k for k, v in last.items() if (v or {}).get("status") != "healthy"]
            return last if not unhealthy else None

        try:
            return wait_until("every Airflow component to be healthy", probe, timeout=timeout)
        except StackWaitError as exc:
            raise StackWaitError(f"{exc}; last health: {last}; see {self.logs}") from None

    # --- DAGs ------------------------------------------------------------------------

    def import_errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.get("/api/v2/importErrors")["import_errors"]
        return errors

    def dag_ids(self) -> set[str]:
        dags = self.get("/api/v2/dags", limit=1000)["dags"]
        return {d["dag_id"] for d in dags}

    def wait_for_dags(
        self, dag_ids: Iterable[str], *, timeout: float = 300, import_errors_fail: bool = True
    ) -> set[str]:
        """Wait until the dag-processor has parsed ``dag_ids``; fail at once on import errors."""
        wanted = set(dag_ids)
        seen: set[str] = set()

        def probe() -> set[str] | None:
            nonlocal seen
            errors = self.import_errors() if import_errors_fail else []
            if errors:
                detail = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                raise StackWaitError(f"DAG import errors on the stack:\n{detail}")
            seen = self.dag_ids()
            return seen if wanted <= seen else None

        try:
            return wait_until(f"DAGs {sorted(wanted)} to be parsed", probe, timeout=timeout)
        except StackWaitError as exc:
            raise StackWaitError(f"{exc}; listed so far: {sorted(seen)}; see {self.logs}") from None

    def set_paused(self, dag_id: str, paused: bool) -> None:
        resp = self.rest("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
        resp.raise_for_status()

    # --- runs ------------------------------------------------------------------------

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        return run

    def runs(self, dag_id: str, **filters: Any) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns", limit=1000, **filters
        )["dag_runs"]
        return runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", limit=1000
        )["task_instances"]
        return tis

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` (``[map_index]`` when mapped) -> state."""
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def wait_for_runs(
        self, dag_id: str, run_ids: Iterable[str], *, timeout: float = 600
    ) -> dict[str, dict[str, Any]]:
        """Wait until every run is terminal (success or failed); return them by run id."""
        wanted = list(run_ids)
        last: dict[str, dict[str, Any]] = {}

        def probe() -> dict[str, dict[str, Any]] | None:
            for run_id in wanted:
                last[run_id] = self.run(dag_id, run_id)
            done = all(r["state"] in TERMINAL_RUN_STATES for r in last.values())
            return dict(last) if done else None

        try:
            return wait_until(f"runs {wanted} of {dag_id}", probe, timeout=timeout, every=3)
        except StackWaitError as exc:
            raise StackWaitError(f"{exc}\n{self.describe_runs(dag_id, wanted)}") from None

    def describe_runs(self, dag_id: str, run_ids: Iterable[str]) -> str:
        """Each run's state and its task instances' states, for failure messages."""
        lines = []
        for run_id in run_ids:
            run = self.run(dag_id, run_id)
            lines.append(f"{run_id}: {run['state']}")
            for task, state in sorted(self.task_states(dag_id, run_id).items()):
                lines.append(f"    {task}: {state}")
        lines.append(f"health: {self.health()}")
        lines.append(f"(stack logs: {self.logs}; task logs under AIRFLOW_HOME/logs)")
        return "\n".join(lines)

    # --- backfills -------------------------------------------------------------------

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        backfills: list[dict[str, Any]] = self.get("/api/v2/backfills", dag_id=dag_id)["backfills"]
        return backfills
