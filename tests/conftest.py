"""Shared fixtures: a throwaway AIRFLOW_HOME, the local S3 server, the vendor simulators.

The Airflow environment is set at import time, before anything imports ``airflow``,
so every test process (and each xdist worker) gets its own home and SQLite database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

_HOME = Path(tempfile.mkdtemp(prefix="ce-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_HOME / "logs"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    }
)
# The suite's notion of today: the simulators generate data up to it, and every test that
# needs a recent day computes it from include.simulators.clock (today(), days_ago(n)),
# never from a literal. Set once here, before any simulator is imported; `make test` also
# runs the DAG-run tests with it a year ahead (SIM_TODAY=YYYY-MM-DD).
os.environ.setdefault("SIM_TODAY", dt.datetime.now(dt.UTC).date().isoformat())
# Tests must never reach a real AWS endpoint by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

LAKE_BUCKET = "compliance-lake"
LAKE_CONN_ID = "aws_lake"


def without_run(key: str) -> str:
    """A raw key without its run-scoped segment (``run=<token>/``): the file's place."""
    return re.sub(r"/run=[^/]+/", "/", key)


def set_connection(conn_id: str, conn: dict[str, Any]) -> None:
    """Define an Airflow connection for this process (``AIRFLOW_CONN_<ID>`` JSON form)."""
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


@dataclass
class LocalS3:
    endpoint_url: str
    bucket: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"
    conn_id: str = LAKE_CONN_ID

    def connection(self) -> dict[str, Any]:
        return {
            "conn_type": "aws",
            "login": self.access_key,
            "password": self.secret_key,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            obj["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        )

    def read(self, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def empty(self) -> None:
        client = self.client()
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)


def pytest_report_header() -> str:
    return f"suite today (SIM_TODAY): {os.environ['SIM_TODAY']}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """moto's S3 HTTP API on a free loopback port, with the lake bucket created."""
    from moto.server import ThreadedMotoServer

    from include.simulators.base import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = LocalS3(endpoint_url=f"http://127.0.0.1:{port}", bucket=LAKE_BUCKET)
    s3.client().create_bucket(Bucket=s3.bucket)
    set_connection(s3.conn_id, s3.connection())
    yield s3
    server.stop()


@pytest.fixture
def iam_s3() -> Iterator[str]:
    """A moto server of its own, IAM not yet enforced (``tests.iam_s3.read_only_reader``
    switches it on): moto's enforcement is process-global, so it runs in a process of
    its own and the session's in-process server stays open."""
    from include.simulators.base import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def alert_receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """A real SMTP server and a webhook receiver on loopback (the local stack's own,
    include/localstack/receivers.py), behind the shipped registry's alert connections
    ``smtp_alerts`` and ``apprise_alerts`` for the whole session: a run that fails in
    any later test still finds them listening."""
    from include.localstack.receivers import MailReceiver, WebhookReceiver

    root = tmp_path_factory.mktemp("alerts")
    with MailReceiver(root / "mail") as mail, WebhookReceiver(root / "webhooks") as hooks:
        set_connection("smtp_alerts", mail.connection())
        set_connection("apprise_alerts", hooks.connection())
        yield mail, hooks


@pytest.fixture
def inbox(alert_receivers: tuple[Any, Any]) -> tuple[Any, Any]:
    """The alert receivers, emptied for the test: ``mail, hooks = inbox``."""
    for receiver in alert_receivers:
        receiver.clear()
    return alert_receivers


@pytest.fixture
def s3(s3_server: LocalS3) -> Iterator[LocalS3]:
    """The local S3 server, empty when the test starts, emptied after it."""
    s3_server.empty()
    yield s3_server
    s3_server.empty()


def _start_all(profile: str) -> Iterator[dict[str, Any]]:
    from include.simulators import VENDORS, start_simulator

    running = {}
    try:
        for vendor in VENDORS:
            running[vendor] = start_simulator(vendor, seed=1234, profile=profile)
        yield running
    finally:
        for sim in running.values():
            sim.stop()


@pytest.fixture(scope="session")
def simulators() -> Iterator[dict[str, Any]]:
    """All four vendor simulators on free loopback ports, connections pre-set.

    Tests that need special settings (tiny token TTL, a given latency) start their own
    with ``include.simulators.start_simulator``.
    """
    for running in _start_all("default"):
        for vendor, sim in running.items():
            set_connection(f"{vendor}_default", sim.connection())
        yield running


@pytest.fixture(scope="session")
def hostile_simulators() -> Iterator[dict[str, Any]]:
    """The four simulators under the ``hostile`` profile: every CHOICE at its least
    convenient documented-compatible alternative. Connections are not set: a test points
    them here for its own duration (see ``tests/dags/test_dag_runs.py``)."""
    yield from _start_all("hostile")


def _reset(simulators: dict[str, Any]) -> None:
    for running in simulators.values():
        with running.admin() as admin:
            admin.delete("/_sim/faults")
            admin.delete("/_sim/requests")


@pytest.fixture
def sim(simulators: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The session simulators, no fault armed and an empty request log (before and after)."""
    _reset(simulators)
    yield simulators
    _reset(simulators)


def _sailpoint_urls(values: Any) -> set[str]:
    """The base URLs of the SailPoint simulators among a test's fixture values: a
    RunningSimulator, a dict of them, the in-process services of a stack (``simulators``)
    or a local stack's description (``info["simulators"]``)."""
    from include.simulators import RunningSimulator

    found: set[str] = set()
    for value in values:
        if isinstance(getattr(value, "simulators", None), dict):
            value = value.simulators
        described = getattr(value, "info", None)
        if isinstance(described, dict) and "sailpoint" in described.get("simulators", {}):
            found.add(str(described["simulators"]["sailpoint"]["base_url"]))
            continue
        inner = value.values() if isinstance(value, dict) else [value]
        found |= {
            v.base_url for v in inner if isinstance(v, RunningSimulator) and v.vendor == "sailpoint"
        }
    return found


@pytest.fixture(autouse=True)
def sailpoint_answers_as_documented(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every answer of the SailPoint simulators it used (its own, or a
    stack's) must match tests/openapi/sailpoint-reports.yaml (a mismatch errors the test
    at teardown)."""
    yield
    urls = _sailpoint_urls(getattr(request.node, "funcargs", {}).values())
    if urls:
        import httpx

        from tests.openapi.sailpoint_validator import assert_answers_valid

        for url in sorted(urls):
            with contextlib.suppress(httpx.ConnectError):  # stopped by its own fixture
                assert_answers_valid(url)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata database in this session's throwaway AIRFLOW_HOME."""
    from airflow.utils import db

    db.resetdb()
    return _HOME


@dataclass
class RunningStack:
    """A `make up` local stack started for the tests (its own state dir and ports)."""

    state_dir: Path
    info: dict[str, Any]
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    def token(self) -> str:
        import httpx

        login = self.info["login"]
        resp = httpx.post(f"{self.api_url}/auth/token", json=login, timeout=30)
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.request(method, f"{self.api_url}{path}", headers=headers, timeout=60, **kwargs)


def _stack_command(command: str, env: dict[str, str]) -> None:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "include.localstack", command],
        cwd=REPO, env=env, check=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`python -m include.localstack up` on free ports; `down` afterwards."""
    from include.simulators.base import free_port

    state_dir = tmp_path_factory.mktemp("localstack")
    api = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "AWS_"))
    }
    env.update(
        CE_STATE_DIR=str(state_dir),
        CE_API_PORT=str(api),
        CE_S3_PORT=str(free_port()),
        CE_SIM_PORT_BASE="0",
    )
    _stack_command("up", env)
    try:
        info = json.loads((state_dir / "stack.json").read_text())
        yield RunningStack(state_dir=state_dir, info=info, env=env)
    finally:
        _stack_command("down", env)


# --- running the registry's DAGs with dag.test() -----------------------------------


def form_defaults(dag_id: str) -> dict[str, Any]:
    """Every trigger-form field at its default, as the UI submits a form."""
    from compliance_exports.dag_factory import trigger_form
    from compliance_exports.registry import load_registry

    entries = load_registry().by_dag()[dag_id]
    return {name: param.value for name, param in trigger_form(entries).items()}


def _run_for_day(dag: Any, day: dt.date, conf: dict[str, Any] | None = None) -> Any:
    logical = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    # dag.test() keeps run_conf values in the in-process DAG object's params, so every
    # run sends the whole form (as the UI does): one test's values never leak into the next.
    return dag.test(logical_date=logical, run_conf={**form_defaults(dag.dag_id), **(conf or {})})


@pytest.fixture(scope="session")
def run_for_day() -> Any:
    """``run_for_day(dag, day, conf=None)``: dag.test() of the interval ``[day, day + 1)``."""
    return _run_for_day


@pytest.fixture(scope="session")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from compliance_exports.registry import DEFAULT_REGISTRY

    doc = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    doc["defaults"]["retry_delay"] = "1s"
    doc["defaults"]["poll_interval"] = "1s"
    path = tmp_path_factory.mktemp("registry") / "exports.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="session")
def dags(registry_file: Path, airflow_db: Path, s3_server: Any, simulators: Any) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    mp = pytest.MonkeyPatch()
    mp.setenv("COMPLIANCE_EXPORTS_REGISTRY", str(registry_file))
    try:
        bag = DagBag(dag_folder=str(REPO / "dags"))
    finally:
        mp.undo()
    assert bag.import_errors == {}
    return dict(bag.dags)
