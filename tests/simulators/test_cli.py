"""``python -m include.simulators``: options, a real run in a subprocess, flat memory at 1M rows."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from include.simulators import __main__ as cli
from include.simulators import start_simulator

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE = 60.0
VEZA_CREATE = "/api/preview/awf/exports/access_review:create"


class Simulators:
    """A CLI run in a subprocess, with what it printed."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "include.simulators", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.urls: dict[str, str] = {}
        self.connections: dict[str, dict[str, Any]] = {}

    def wait_ready(self) -> Simulators:
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().rstrip("\n")
            if not line and self.process.poll() is not None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"simulators exited {self.process.returncode}: {stderr}")
            self.lines.append(line)
            if line.startswith("simulators ready"):
                self.parse()
                return self
        raise AssertionError(f"simulators not ready: {self.lines}")

    def parse(self) -> None:
        for line in self.lines:
            if line.startswith("export AIRFLOW_CONN_"):
                name, _, value = line.removeprefix("export AIRFLOW_CONN_").partition("=")
                vendor = name.removesuffix("_DEFAULT").lower()
                self.connections[vendor] = json.loads(value.strip("'"))
            elif " http://" in line:
                vendor, url = line.split(" ", 1)
                self.urls[vendor] = url

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def run_cli() -> Iterator[Any]:
    started: list[Simulators] = []

    def run(*args: str) -> Simulators:
        sims = Simulators(list(args))
        started.append(sims)
        return sims.wait_ready()

    yield run
    for sims in started:
        if sims.process.poll() is None:
            sims.process.kill()
            sims.process.wait(timeout=30)


def free_port_block(size: int) -> int:
    """A base port with ``size`` consecutive free ports (checked, not reserved)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size < 65535 and all(port_is_free(base + i) for i in range(size)):
            return base
    raise AssertionError("no block of free ports")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- in process


class TestOptions:
    def test_help_documents_ports_settings_and_faults(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        for option in ("--vendor", "--port-base", "--seed", "--set", "--fault", "--state-file"):
            assert option in text
        assert "PORT_BASE+4" in text
        assert "veza:" in text
        assert "retry_after_form" in text

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--vendor", "acme"], "unknown vendor 'acme'"),
            (["--vendor", "veza", "--set", "veza.nope=1"], "has no setting 'nope'"),
            (["--vendor", "veza", "--set", "veza.rows=many"], "veza.rows: 'many' is not a int"),
            (["--vendor", "veza", "--set", "oleria.rows=1"], "vendor 'oleria' is not running"),
            (["--vendor", "veza", "--set", "rows=1"], "expected VENDOR.FIELD=VALUE"),
            (["--vendor", "veza", "--fault", "veza:meteor"], "unknown kind 'meteor'"),
            (["--vendor", "veza", "--fault", "veza:rate_limit:colour=red"], "'colour=red'"),
            (["--vendor", "veza", "--fault", "veza:rate_limit:count=x"], "fault count"),
        ],
    )
    def test_bad_arguments_are_usage_errors(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["--port-base", "0", *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err

    def test_settings_are_converted_to_field_types(self) -> None:
        parsed = cli.parse_settings(
            [
                "veza.rows=10",
                "veza.latency=0.5",
                "veza.status_prefix=yes",
                "veza.latency_max=none",
                "veza.forbidden_certifications=a, b",
                "oleria.audience=https://x",
            ],
            ["veza", "oleria"],
        )
        assert parsed == {
            "veza": {
                "rows": 10,
                "latency": 0.5,
                "status_prefix": True,
                "latency_max": None,
                "forbidden_certifications": ["a", "b"],
            },
            "oleria": {"audience": "https://x"},
        }

    def test_faults_are_converted_to_fault_fields(self) -> None:
        vendor, spec = cli.parse_fault(
            "veza:rate_limit:count=3,retry_after=2.5,retry_after_form=http-date", ["veza"]
        )
        assert vendor == "veza"
        assert spec == {
            "kind": "rate_limit",
            "count": 3,
            "retry_after": 2.5,
            "retry_after_form": "http-date",
        }

    def test_fixed_ports_follow_the_vendor_order(self) -> None:
        assert [cli.ports(18000, v) for v in ("oleria", "veza", "sailpoint", "maxsight")] == [
            18000,
            18001,
            18002,
            18003,
        ]
        assert cli.ports(0, "veza") == 0


# --------------------------------------------------------------------------- subprocess


@pytest.mark.integration
def test_runs_all_vendors_and_exits_cleanly_on_sigterm(run_cli: Any, tmp_path: Path) -> None:
    base = free_port_block(5)
    state_file = tmp_path / "simulators.json"
    sims = run_cli(
        "--port-base", str(base), "--seed", "7",
        "--set", "veza.rows=25", "--set", "oleria.latency=0.1",
        "--fault", "veza:rate_limit:count=1,retry_after=3",
        "--state-file", str(state_file),
    )  # fmt: skip
    vendors = ("oleria", "veza", "sailpoint", "maxsight")
    assert sims.urls == {v: f"http://127.0.0.1:{base + i}" for i, v in enumerate(vendors)}
    state = json.loads(state_file.read_text())
    assert set(state) == set(vendors)
    assert state["veza"]["connection"] == sims.connections["veza"]
    assert state["oleria"]["origins"][1] == f"http://127.0.0.1:{base + 4}"
    assert sims.connections["oleria"]["extra"]["token_url"].startswith(sims.urls["oleria"])

    veza = sims.connections["veza"]
    with httpx.Client(base_url=veza["host"], timeout=10) as http:
        auth = {"Authorization": f"Bearer {veza['password']}"}
        body = {"format": 0, "certification_id": "c1"}
        limited = http.post(VEZA_CREATE, json=body, headers=auth)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "3"
        assert http.post(VEZA_CREATE, json=body, headers=auth).status_code == 200
        assert http.get("/_sim/config").json()["rows"] == 25
        assert http.get("/_sim/facts").json()["seed"] == 7
    with httpx.Client(base_url=sims.urls["oleria"], timeout=10) as http:
        assert http.get("/_sim/config").json()["latency"] == 0.1

    assert sims.terminate() == 0
    assert sims.process.stdout is not None
    assert "simulators stopped" in sims.process.stdout.read()
    assert not state_file.exists()
    assert all(port_is_free(base + i) for i in range(5))


def test_advertised_host_is_used_in_every_url() -> None:
    sim = start_simulator("oleria", download_host="simulators", latency=0)
    try:
        args = cli.parser().parse_args(["--host", "127.0.0.1", "--advertise-host", "simulators"])
        state = cli.describe({"oleria": sim}, args)["oleria"]
        assert state["base_url"] == f"http://simulators:{sim.servers[0].port}"
        assert state["connection"]["extra"]["token_url"].startswith("http://simulators:")
        assert all(origin.startswith("http://simulators:") for origin in state["origins"])
        with httpx.Client(base_url=sim.base_url, timeout=10) as http:
            connection = {**sim.connection(), "host": sim.base_url}
            connection["extra"] = dict(sim.extra)
            url = completed_url(http, connection)
        assert url.startswith(f"http://simulators:{sim.servers[1].port}/")
    finally:
        sim.stop()


def test_wildcard_bind_advertises_loopback() -> None:
    args = cli.parser().parse_args(["--host", "0.0.0.0"])
    assert cli.advertise_host(args) == "127.0.0.1"


# --------------------------------------------------------------------------- memory

MILLION = 1_000_000
RSS_GROWTH_LIMIT = 100 * 1024 * 1024


@pytest.mark.integration
def test_a_million_row_export_streams_with_flat_memory(run_cli: Any) -> None:
    sims = run_cli(
        "--vendor", "oleria", "--port-base", "0",
        "--set", f"oleria.rows={MILLION}", "--set", "oleria.latency=0",
        "--set", "oleria.content_length=false",
    )  # fmt: skip
    server = psutil.Process(sims.process.pid)
    connection = sims.connections["oleria"]
    with httpx.Client(base_url=connection["host"], timeout=120) as http:
        url = completed_url(http, connection)
        baseline = server.memory_info().rss
        peak, lines, size = baseline, 0, 0
        with http.stream("GET", url) as answer:
            assert answer.status_code == 200
            for number, chunk in enumerate(answer.iter_bytes()):
                lines += chunk.count(b"\n")
                size += len(chunk)
                if number % 64 == 0:
                    peak = max(peak, server.memory_info().rss)
        facts = http.get("/_sim/facts").json()["exports"]
    assert lines == MILLION + 1  # a header and a million rows (no line breaks in these cells)
    assert size > 100 * 1024 * 1024
    assert next(iter(facts.values()))["rows"] == MILLION
    assert peak - baseline < RSS_GROWTH_LIMIT, f"RSS grew {(peak - baseline) / 2**20:.0f} MiB"
    assert sims.terminate() == 0


def completed_url(http: httpx.Client, connection: dict[str, Any]) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": connection["login"],
        "client_secret": connection["password"],
    }
    token = http.post(connection["extra"]["token_url"], data=form).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    body = {"context": "accessInventoryIdentitiesV2", "params": {}}
    download_id = http.post("/v1/downloads", json=body, headers=auth).json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = http.get(f"/v1/downloads/{download_id}", headers=auth).json()
        if status["status"] == "completed":
            return str(status["url"])
        time.sleep(0.1)
    raise AssertionError("the million-row export did not complete")


@pytest.mark.parametrize(
    ("how", "expected"), [("flag", True), ("env", True), ("none", False)], ids=str
)
def test_hostile_profile_from_the_flag_or_sim_profile(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch, how: str, expected: bool
) -> None:
    """``--profile hostile`` (or ``SIM_PROFILE=hostile``) applies every simulator's
    HOSTILE settings; an explicit ``--set`` still wins."""
    from include.simulators.oleria import HOSTILE as OLERIA
    from include.simulators.veza import HOSTILE as VEZA

    monkeypatch.setenv("SIM_PROFILE", "hostile" if how == "env" else "default")
    args = ["--port-base", "0", "--vendor", "oleria", "--vendor", "veza"]
    sims = run_cli(*args, *(["--profile", "hostile"] if how == "flag" else []),
                   "--set", "oleria.rate_limit=1000")  # fmt: skip
    with httpx.Client(base_url=sims.urls["oleria"], timeout=10) as admin:
        oleria = admin.get("/_sim/config").json()
    with httpx.Client(base_url=sims.urls["veza"], timeout=10) as admin:
        veza = admin.get("/_sim/config").json()
    assert (oleria["create_status"] == OLERIA["create_status"]) is expected
    assert (veza["format_field"] == VEZA["format_field"]) is expected
    assert oleria["rate_limit"] == 1000
    assert sims.terminate() == 0
