"""The embedded local stack: ``make up`` / ``make down`` / ``make status``.

``up`` starts, each in its own process group with its PID recorded in
``.airflow/stack.json``:

* the services process (``python -m include.localstack serve``): the four vendor
  simulators and the local S3 server (moto), bucket created;
* ``airflow standalone`` (api-server on 127.0.0.1, scheduler, dag-processor,
  triggerer, LocalExecutor sized for 2 cores) on SQLite under ``.airflow/home``,
  with every connection pre-set through ``AIRFLOW_CONN_*`` variables and one pool
  per vendor created with ``--include-deferred``.

``down`` stops the recorded process groups; nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("CE_STATE_DIR", REPO / ".airflow")).resolve()
STACK_FILE = STATE_DIR / "stack.json"
STACK_ENV_FILE = STATE_DIR / "stack.env"
SERVICES_FILE = STATE_DIR / "services.json"
LOG_DIR = STATE_DIR / "logs"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - documented login of the throwaway local stack
VENDOR_POOLS = {"oleria": 2, "veza": 2, "sailpoint": 2, "maxsight": 2}


@dataclass(frozen=True)
class StackPorts:
    """Ports of ``make up``; each overridable by an environment variable (README)."""

    api: int = int(os.environ.get("CE_API_PORT", "18080"))
    s3: int = int(os.environ.get("CE_S3_PORT", "18090"))
    simulator_base: int = int(os.environ.get("CE_SIM_PORT_BASE", "18000"))

    @property
    def worker_log(self) -> int:
        return self.api + 1

    @property
    def trigger_log(self) -> int:
        return self.api + 2


def pythonpath() -> str:
    """The repo, for ``include`` (``compliance_exports`` is installed in the venv)."""
    return str(REPO)


def airflow_env(home: Path, *, api_port: int, log_ports: tuple[int, int]) -> dict[str, str]:
    """The environment every ``airflow`` process of the local stack runs with."""
    base_url = f"http://127.0.0.1:{api_port}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # the connection form's Test button (and POST /api/v2/connections/test) runs the
        # vendor hook's test_connection() in the api-server: one cheap read, no export
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        # SQLite allows one writer: wait up to a minute for the lock (scheduler, api-server,
        # dag-processor and CLI commands such as `airflow backfill create` all write)
        # instead of failing after sqlite3's default 5 s with "database is locked".
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports[1]),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "PYTHONPATH": pythonpath(),
    }


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def venv_path() -> str:
    """PATH with this interpreter's bin first: ``airflow standalone`` runs ``airflow ...``."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def run_airflow(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [airflow_bin(), *args], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
    )


def create_pools(env: dict[str, str]) -> None:
    """One pool per vendor, counting deferred tasks: one `airflow pools import` (one start-up
    of the CLI instead of one per pool)."""
    pools = {
        vendor: {
            "slots": slots,
            "description": f"{vendor} export API calls (deferred waits count)",
            "include_deferred": True,
        }
        for vendor, slots in VENDOR_POOLS.items()
    }
    path = Path(env["AIRFLOW_HOME"]) / "pools.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pools, indent=2))
    run_airflow(env, "pools", "import", str(path))


def seed_admin_password(home: Path) -> None:
    """The simple auth manager reads fixed passwords from this file (see README)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "simple_auth_manager_passwords.json.generated"
    path.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))


def spawn(name: str, argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` in its own process group, logging to .airflow/logs/<name>.log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=REPO,
        )
    return proc.pid


def stop_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def wait_for_file(path: Path, pid: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        if not group_alive(pid):
            break
        time.sleep(0.2)
    raise RuntimeError(f"{path.name} did not appear; see {LOG_DIR}")


def wait_for_health(url: str, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_alive(pid):
            raise RuntimeError(f"airflow standalone exited; see {LOG_DIR / 'standalone.log'}")
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"api-server at {url} not healthy after {timeout:.0f}s")


def up(ports: StackPorts) -> dict[str, Any]:
    if STACK_FILE.exists():
        raise SystemExit(f"a stack is already recorded in {STACK_FILE}; run `make down` first")
    SERVICES_FILE.unlink(missing_ok=True)
    pids: dict[str, int] = {}
    try:
        pids["services"] = spawn(
            "services",
            [
                sys.executable,
                "-m",
                "include.localstack",
                "serve",
                "--state-file",
                str(SERVICES_FILE),
                "--s3-port",
                str(ports.s3),
                "--sim-port-base",
                str(ports.simulator_base),
            ],
            {"PYTHONPATH": pythonpath()},
        )
        services = wait_for_file(SERVICES_FILE, pids["services"], timeout=60)
        home = STATE_DIR / "home"
        env = {
            **airflow_env(
                home, api_port=ports.api, log_ports=(ports.worker_log, ports.trigger_log)
            ),
            **services["connection_env"],
        }
        seed_admin_password(home)
        run_airflow(env, "db", "migrate")
        create_pools(env)
        pids["standalone"] = spawn(
            "standalone", [airflow_bin(), "standalone"], {**env, "PATH": venv_path()}
        )
        api_url = env["AIRFLOW__API__BASE_URL"]
        wait_for_health(api_url, pids["standalone"], timeout=240)
    except BaseException:
        for pid in pids.values():
            stop_group(pid)
        raise
    stack = {
        "airflow_home": str(home),
        "api_url": api_url,
        "login": {"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        **services["describe"],
        "pids": pids,
        "logs": str(LOG_DIR),
        "env": env,
    }
    STACK_FILE.write_text(json.dumps(stack, indent=2))
    STACK_ENV_FILE.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    return stack


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def stray_processes(home: str) -> list[int]:
    """PIDs of airflow processes of this stack outside the recorded groups (Linux ``/proc``).

    Airflow 3.3's task supervisor moves each running task into a process group of its own;
    those still carry the stack's ``AIRFLOW_HOME``. Never this process, its ancestors (a
    shell that sourced stack.env) or its own group.
    """
    needle = f"\0AIRFLOW_HOME={home}\0".encode()
    mine, own_group = _ancestors(), os.getpgrp()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid in mine:
            continue
        with contextlib.suppress(OSError):
            environ = b"\0" + (proc / "environ").read_bytes() + b"\0"
            cmdline = (proc / "cmdline").read_bytes()
            if needle in environ and b"airflow" in cmdline and os.getpgid(pid) != own_group:
                found.append(pid)
    return found


def down() -> list[str]:
    if not STACK_FILE.exists():
        return []
    stack = json.loads(STACK_FILE.read_text())
    stopped = []
    for name, pid in reversed(list(stack.get("pids", {}).items())):
        stop_group(int(pid))
        stopped.append(f"{name} (pid {pid})")
    for pid in stray_processes(stack["airflow_home"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            stop_group(os.getpgid(pid), timeout=10)
            stopped.append(f"task process group {pid}")
    STACK_FILE.unlink(missing_ok=True)
    STACK_ENV_FILE.unlink(missing_ok=True)
    SERVICES_FILE.unlink(missing_ok=True)
    return stopped


def status() -> dict[str, Any]:
    if not STACK_FILE.exists():
        return {"running": False}
    stack = json.loads(STACK_FILE.read_text())
    alive = {name: group_alive(int(pid)) for name, pid in stack["pids"].items()}
    try:
        healthy = httpx.get(f"{stack['api_url']}/api/v2/monitor/health", timeout=3).json()
    except (httpx.HTTPError, ValueError):
        healthy = None
    return {
        "running": all(alive.values()),
        "processes": alive,
        "health": healthy,
        "api_url": stack["api_url"],
    }
