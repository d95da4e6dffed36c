"""`make up` / `make down` (issue 2): what the stack records, serves, and leaves behind."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from include.localstack.stack import VENDOR_POOLS, group_alive
from include.simulators import VENDORS
from tests.e2e.helpers import REPO, E2EStack, registry_dags

pytestmark = [pytest.mark.airflow, pytest.mark.integration]


class TestStackFile:
    def test_describes_simulators_s3_airflow_and_env(self, stack: E2EStack) -> None:
        info = stack.info
        assert sorted(info["simulators"]) == sorted(VENDORS)
        for vendor, sim in info["simulators"].items():
            assert sim["base_url"].startswith("http://127.0.0.1:"), vendor
            assert sim["credentials"].get("password"), f"{vendor} has no credentials"
        s3 = info["s3"]
        assert s3["endpoint_url"].startswith("http://127.0.0.1:")
        assert all(s3[key] for key in ("bucket", "access_key", "secret_key")), s3
        assert Path(info["airflow_home"]).is_dir()
        assert info["api_url"] == f"http://127.0.0.1:{stack.command_env['CE_API_PORT']}"
        assert info["login"] == {"username": "admin", "password": "admin"}
        env = info["env"]
        assert env["AIRFLOW_HOME"] == info["airflow_home"]
        for vendor in VENDORS:
            conn = json.loads(env[f"AIRFLOW_CONN_{vendor.upper()}_DEFAULT"])
            assert conn["host"] == info["simulators"][vendor]["base_url"]
        lake = json.loads(env[f"AIRFLOW_CONN_{s3['conn_id'].upper()}"])
        assert lake["extra"]["endpoint_url"] == s3["endpoint_url"]

    def test_stack_env_matches_env(self, stack: E2EStack) -> None:
        text = (stack.state_dir / "stack.env").read_text()
        exported = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in text.splitlines()
        )
        assert exported == stack.info["env"]


class TestAirflow:
    def test_components_healthy(self, stack: E2EStack) -> None:
        health = stack.client.wait_for_healthy(timeout=180)
        assert {"metadatabase", "scheduler", "triggerer", "dag_processor"} <= set(health)

    def test_lists_every_dag_without_import_errors(self, stack: E2EStack) -> None:
        expected = set(registry_dags())
        listed = stack.client.wait_for_dags(expected, timeout=300)
        assert expected <= listed
        errors = stack.client.get("/api/v2/importErrors")
        assert errors["total_entries"] == 0, errors["import_errors"]

    def test_vendor_pools_count_deferred_tasks(self, stack: E2EStack) -> None:
        pools = {p["name"]: p for p in stack.client.get("/api/v2/pools")["pools"]}
        for vendor, slots in VENDOR_POOLS.items():
            assert vendor in pools, f"pool {vendor} missing: {sorted(pools)}"
            assert pools[vendor]["slots"] == slots
            assert pools[vendor]["include_deferred"] is True, pools[vendor]

    def test_shell_cli_after_sourcing_stack_env(self, stack: E2EStack) -> None:
        """`source stack.env && airflow dags list` from a shell, as the README says."""
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "CE_"))
        }
        clean["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), clean["PATH"]])
        env_file = stack.state_dir / "stack.env"
        result = subprocess.run(
            ["bash", "-c", f"source {shlex.quote(str(env_file))} && airflow dags list -o json"],
            env=clean,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # Log lines may precede the JSON document on stdout: it is the line opening with "[{".
        document = next(line for line in result.stdout.splitlines() if line.startswith("[{"))
        listed = {d["dag_id"] for d in json.loads(document)}
        assert set(registry_dags()) <= listed


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_using(state_dir: Path) -> list[str]:
    """Processes whose environment or command line mentions the stack's state dir."""
    found = []
    needle = str(state_dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blobs = (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in blobs:
            found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()[:200]!r}")
    return found


@pytest.mark.stack_down
def test_down_leaves_nothing_behind(stack: E2EStack) -> None:
    """`python -m include.localstack down` stops every recorded process group; again: no-op."""
    if os.environ.get("CE_E2E_STACK_DIR"):
        pytest.skip("CE_E2E_STACK_DIR: the stack belongs to the caller; not stopping it")
    pids = {name: int(pid) for name, pid in stack.info["pids"].items()}
    api_port = int(stack.command_env["CE_API_PORT"])
    ports = {
        "api-server": api_port,
        "worker log server": api_port + 1,
        "trigger log server": api_port + 2,
        "s3": urlsplit(stack.info["s3"]["endpoint_url"]).port,
        **{v: urlsplit(s["base_url"]).port for v, s in stack.info["simulators"].items()},
    }
    assert all(group_alive(pid) for pid in pids.values()), pids
    command = [sys.executable, "-m", "include.localstack", "down"]
    run = subprocess.run(
        command, env=stack.command_env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    for name, pid in pids.items():
        assert not group_alive(pid), f"process group of {name} ({pid}) still alive"
    deadline = time.monotonic() + 30
    while (busy := [n for n, p in ports.items() if p and _listening(p)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(1)
    assert not busy, f"still listening after down: {busy}"
    assert not _processes_using(stack.state_dir), _processes_using(stack.state_dir)
    assert not (stack.state_dir / "stack.json").exists()
    assert not (stack.state_dir / "stack.env").exists()
    again = subprocess.run(
        command, env=stack.command_env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "no local stack was running" in again.stdout
