"""docker-compose.yaml: valid for Compose, and the topology docs/DESIGN.md relies on.

``docker-compose config`` parses, interpolates and validates the file without a Docker
engine; the assertions run on its resolved output, so they see what Compose would run.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from include.distributed import VENDOR_POOLS
from include.distributed.stack import port_is_free

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
VENDORS = ("oleria", "veza", "sailpoint", "maxsight")
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
LONG_RUNNING = (*AIRFLOW_SERVICES, "postgres", "redis", "minio", "simulators")
ONE_SHOT = ("airflow-init", "minio-init")
SECRETS = {
    "AIRFLOW_FERNET_KEY": "n7T1Hn3BvKl4t3Yl1cR8u4wQ0f0o3kq2b5yWZ2jz7mE=",
    "AIRFLOW_JWT_SECRET": "jwt-secret-for-the-test",
    "AIRFLOW_API_SECRET_KEY": "api-secret-for-the-test",
    "MINIO_ROOT_PASSWORD": "minio-password-for-the-test",
    "MINIO_KMS_SECRET_KEY": "lake-key:IyqsU3kMAkxlH4e3l1p7fVYFmH+3i0Fq7Zo1bm0XoJg=",
    "_AIRFLOW_WWW_USER_PASSWORD": "admin-password-for-the-test",
}


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


COMPOSE = compose_command()
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="neither docker-compose nor `docker compose` is installed (scripts/system-deps.sh)",
)


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value for key, value in pairs if not key.lstrip().startswith("#")}


def run_compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean_env = {k: v for k, v in os.environ.items() if k not in read_env_file(ENV_EXAMPLE)}
    return subprocess.run(
        [*COMPOSE, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env,
        check=False,
    )


@pytest.fixture(scope="module")
def filled_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env.example with its empty secrets filled in, as a user's .env would be."""
    values = {**read_env_file(ENV_EXAMPLE), **SECRETS}
    path = tmp_path_factory.mktemp("compose") / ".env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


@pytest.fixture(scope="module")
def config(filled_env_file: Path) -> dict[str, Any]:
    result = run_compose_config(filled_env_file)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def registry_lake() -> dict[str, Any]:
    """``defaults.lake`` of the export registry the DAGs are built from."""
    registry = yaml.safe_load((REPO / "include" / "registry" / "exports.yaml").read_text())
    lake: dict[str, Any] = registry["defaults"]["lake"]
    return lake


def service(config: dict[str, Any], name: str) -> dict[str, Any]:
    svc: dict[str, Any] = config["services"][name]
    return svc


def environment(config: dict[str, Any], name: str) -> dict[str, str]:
    env = service(config, name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def connection(config: dict[str, Any], conn_id: str) -> dict[str, Any]:
    conn: dict[str, Any] = json.loads(
        environment(config, "airflow-worker")[f"AIRFLOW_CONN_{conn_id.upper()}"]
    )
    return conn


def script(config: dict[str, Any], name: str) -> str:
    """A service's shell script as the container runs it (Compose prints ``$$`` escaped)."""
    command = service(config, name)["command"]
    assert "-c" in command[:2], command
    return str(command[-1]).replace("$$", "$")


def bind_mounts(config: dict[str, Any], name: str) -> dict[str, Path]:
    """target -> host path of a service's bind mounts (short or long syntax)."""
    mounts = {}
    for volume in service(config, name)["volumes"]:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if source.startswith("/"):
            mounts[target] = Path(source)
    return mounts


class TestComposeFile:
    def test_every_service_of_the_topology_is_defined(self, config: dict[str, Any]) -> None:
        assert set(LONG_RUNNING + ONE_SHOT) <= set(config["services"])

    @pytest.mark.parametrize("name", LONG_RUNNING)
    def test_long_running_services_have_a_healthcheck_and_restart(
        self, config: dict[str, Any], name: str
    ) -> None:
        svc = service(config, name)
        assert svc["healthcheck"]["test"], name
        assert svc["restart"] == "always"

    @pytest.mark.parametrize("name", AIRFLOW_SERVICES)
    def test_airflow_services_wait_for_backends_and_init(
        self, config: dict[str, Any], name: str
    ) -> None:
        depends = service(config, name)["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"

    def test_workers_wait_for_the_lake_bucket_and_the_simulators(
        self, config: dict[str, Any]
    ) -> None:
        depends = service(config, "airflow-worker")["depends_on"]
        assert depends["minio-init"]["condition"] == "service_completed_successfully"
        assert depends["simulators"]["condition"] == "service_healthy"
        assert depends["airflow-apiserver"]["condition"] == "service_healthy"
        minio_init = service(config, "minio-init")
        assert minio_init["depends_on"]["minio"]["condition"] == "service_healthy"

    @pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "airflow-init", "simulators"])
    def test_project_folders_are_mounted(self, config: dict[str, Any], name: str) -> None:
        mounts = bind_mounts(config, name)
        folders = ("include",) if name == "simulators" else ("dags", "include")
        for folder in folders:
            assert mounts[f"/opt/airflow/{folder}"] == REPO / folder
        if name != "simulators":  # the editable install's source (Dockerfile)
            assert mounts["/opt/airflow/project/src"] == REPO / "src"

    def test_airflow_services_share_one_environment(self, config: dict[str, Any]) -> None:
        def airflow_settings(name: str) -> dict[str, str]:
            return {
                key: value
                for key, value in environment(config, name).items()
                if key.startswith("AIRFLOW")
            }

        reference = airflow_settings("airflow-scheduler")
        for name in (*AIRFLOW_SERVICES, "airflow-init"):
            assert airflow_settings(name) == reference, name

    def test_every_airflow_service_finds_the_registry_the_image_copies(
        self, config: dict[str, Any]
    ) -> None:
        """The package is installed (no default registry): the DAGs and the evidence
        view read the one the Dockerfile copies to /opt/airflow/include."""
        assert (
            "COPY --chown=airflow:0 include/ /opt/airflow/include/"
            in (REPO / "Dockerfile").read_text()
        )
        for name in (*AIRFLOW_SERVICES, "airflow-init"):
            path = environment(config, name)["COMPLIANCE_EXPORTS_REGISTRY"]
            assert path == "/opt/airflow/include/registry/exports.yaml", name

    def test_celery_on_postgres_and_redis_with_the_secrets_from_env(
        self, config: dict[str, Any]
    ) -> None:
        env = environment(config, "airflow-scheduler")
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["AIRFLOW__CORE__FERNET_KEY"] == SECRETS["AIRFLOW_FERNET_KEY"]
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["AIRFLOW_JWT_SECRET"]
        assert env["AIRFLOW__API__SECRET_KEY"] == SECRETS["AIRFLOW_API_SECRET_KEY"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:"
        )

    def test_the_connection_test_button_is_enabled(self, config: dict[str, Any]) -> None:
        """``[core] test_connection`` is Disabled by default: the UI's Test button and
        ``POST /api/v2/connections/test`` need it Enabled, in the api-server above all."""
        for name in AIRFLOW_SERVICES:
            assert environment(config, name)["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
        # and the local stack (`make up`) the same way
        from include.localstack.stack import airflow_env

        local = airflow_env(Path("/tmp/home"), api_port=8080, log_ports=(8793, 8794))
        assert local["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"

    def test_lake_connection_points_at_minio(self, config: dict[str, Any]) -> None:
        conn = connection(config, "aws_lake")
        assert conn["conn_type"] == "aws"
        assert conn["extra"]["endpoint_url"] == "http://minio:9000"
        assert conn["password"] == SECRETS["MINIO_ROOT_PASSWORD"]
        assert environment(config, "minio")["MINIO_ROOT_PASSWORD"] == SECRETS["MINIO_ROOT_PASSWORD"]

    @pytest.mark.parametrize("vendor", VENDORS)
    def test_vendor_connections_point_at_the_simulators(
        self, config: dict[str, Any], vendor: str
    ) -> None:
        conn = connection(config, f"{vendor}_default")
        assert conn["conn_type"] == vendor
        assert conn["host"].startswith("http://simulators:")
        assert conn["extra"]["allow_insecure_http"] is True

    def test_minio_init_creates_the_registry_bucket(self, config: dict[str, Any]) -> None:
        lake = registry_lake()
        assert environment(config, "minio-init")["LAKE_BUCKET"] == lake["bucket"]
        assert 'mc mb --ignore-existing "lake/${LAKE_BUCKET}"' in script(config, "minio-init")

    def test_the_registry_lake_connection_is_defined(self, config: dict[str, Any]) -> None:
        assert connection(config, registry_lake()["aws_conn_id"])["conn_type"] == "aws"

    def test_minio_can_serve_the_registry_encryption(self, config: dict[str, Any]) -> None:
        if registry_lake().get("sse") in ("AES256", "aws:kms"):
            key = environment(config, "minio")["MINIO_KMS_SECRET_KEY"]
            assert key == SECRETS["MINIO_KMS_SECRET_KEY"]

    def test_image_is_built_from_the_dockerfile(self, config: dict[str, Any]) -> None:
        for name in (*AIRFLOW_SERVICES, "airflow-init", "simulators"):
            build = service(config, name)["build"]
            assert Path(build["context"]) == REPO
            assert build["dockerfile"] == "Dockerfile"

    def test_simulators_service_runs_the_simulator_cli(self, config: dict[str, Any]) -> None:
        svc = service(config, "simulators")
        assert svc["entrypoint"] == ["python", "-m", "include.simulators"]
        args = svc["command"]
        assert args[args.index("--host") + 1] == "0.0.0.0"
        assert args[args.index("--port-base") + 1] == "18000"


def free_port_block(size: int) -> int:
    """The first of ``size`` consecutive free ports."""
    for _ in range(200):
        base = random.randrange(30000, 60000 - size)
        if all(port_is_free(base + offset) for offset in range(size)):
            return base
    raise RuntimeError(f"no {size} consecutive free ports")


class TestSimulatorsService:
    """Runs the simulators service's command (on free ports) and checks the connections."""

    COMPOSE_BASE = 18000

    @pytest.fixture(scope="class")
    @classmethod
    def simulators(
        cls, config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        svc = service(config, "simulators")
        args = list(svc["command"])
        assert int(args[args.index("--port-base") + 1]) == cls.COMPOSE_BASE
        base = free_port_block(5)
        args[args.index("--port-base") + 1] = str(base)
        state_file = tmp_path_factory.mktemp("simulators") / "state.json"
        module = svc["entrypoint"][1:]  # ["-m", "include.simulators"]
        command = [sys.executable, *module, *args, "--state-file", str(state_file)]
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not state_file.exists():
                assert process.poll() is None, "the simulators command exited"
                assert time.monotonic() < deadline, "the simulators did not come up"
                time.sleep(0.2)
            yield base, json.loads(state_file.read_text())
        finally:
            process.terminate()
            process.wait(timeout=30)

    def to_compose_port(self, url: str, base: int) -> str:
        parts = urlsplit(url)
        assert parts.port is not None
        port = parts.port - base + self.COMPOSE_BASE
        return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))

    @pytest.mark.parametrize("vendor", VENDORS)
    def test_connection_matches_what_the_simulator_accepts(
        self, config: dict[str, Any], simulators: tuple[int, dict[str, Any]], vendor: str
    ) -> None:
        base, state = simulators
        expected = state[vendor]["connection"]
        actual = connection(config, f"{vendor}_default")
        assert actual["host"] == self.to_compose_port(expected["host"], base)
        assert (actual.get("login") or None) == (expected.get("login") or None)
        assert actual["password"] == expected["password"]
        extra = {k: v for k, v in actual["extra"].items() if k != "allow_insecure_http"}
        assert extra == {
            k: self.to_compose_port(v, base) if k.endswith("_url") else v
            for k, v in expected["extra"].items()
        }

    def test_every_origin_is_published_and_advertised_by_service_name(
        self, config: dict[str, Any], simulators: tuple[int, dict[str, Any]]
    ) -> None:
        base, state = simulators
        published = service(config, "simulators")["ports"]
        targets = set()
        for port in published:
            target = str(port["target"] if isinstance(port, dict) else port.split(":")[-1])
            first, _, last = target.partition("-")
            targets |= set(range(int(first), int(last or first) + 1))
        for info in state.values():
            for origin in info["origins"]:
                compose_origin = urlsplit(self.to_compose_port(origin, base))
                assert compose_origin.hostname == "simulators"
                assert compose_origin.port in targets

    def test_healthcheck_url_answers(
        self, config: dict[str, Any], simulators: tuple[int, dict[str, Any]]
    ) -> None:
        base, _ = simulators
        probe = " ".join(service(config, "simulators")["healthcheck"]["test"])
        found = re.search(r"http://localhost:(\d+)(/[\w/]+)", probe)
        assert found, probe
        port = int(found.group(1)) - self.COMPOSE_BASE + base
        response = httpx.get(f"http://127.0.0.1:{port}{found.group(2)}", timeout=10)
        assert response.status_code == 200


class TestInitJob:
    """Runs airflow-init's resolved script with a recording stand-in for the airflow CLI."""

    @pytest.fixture(scope="class")
    @classmethod
    def init_run(cls, config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
        root = tmp_path_factory.mktemp("init")
        bin_dir = root / "bin"
        bin_dir.mkdir()
        calls = root / "calls.jsonl"
        for tool in ("airflow", "chown", "mkdir"):
            stub = bin_dir / tool
            stub.write_text(
                "#!/usr/bin/env python3\nimport json, sys\n"
                f"open({str(calls)!r}, 'a').write(json.dumps([{tool!r}, *sys.argv[1:]]) + '\\n')\n"
            )
            stub.chmod(0o755)
        env = {
            **environment(config, "airflow-init"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
            "PATH": os.pathsep.join(
                [str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]
            ),
        }
        subprocess.run(["bash", "-c", script(config, "airflow-init")], env=env, check=True)
        return root

    @staticmethod
    def calls(init_run: Path) -> list[list[str]]:
        lines = (init_run / "calls.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def test_migrates_the_database(self, init_run: Path) -> None:
        assert ["airflow", "db", "migrate"] in self.calls(init_run)

    def test_creates_one_pool_per_vendor_including_deferred_tasks(self, init_run: Path) -> None:
        pools = {
            call[3]: call
            for call in self.calls(init_run)
            if call[:3] == ["airflow", "pools", "set"]
        }
        assert set(pools) == set(VENDOR_POOLS) == set(VENDORS)
        for name, call in pools.items():
            assert call[4] == str(VENDOR_POOLS[name])
            assert "--include-deferred" in call[5:]

    def test_seeds_the_admin_login(self, init_run: Path, config: dict[str, Any]) -> None:
        passwords = json.loads((init_run / "passwords.json").read_text())
        assert passwords == {"admin": SECRETS["_AIRFLOW_WWW_USER_PASSWORD"]}
        env = environment(config, "airflow-apiserver")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"


class TestSettings:
    def test_missing_secrets_stop_compose(self, tmp_path: Path) -> None:
        env_file = tmp_path / ".env"
        env_file.write_text(ENV_EXAMPLE.read_text())
        result = run_compose_config(env_file)
        assert result.returncode != 0
        assert "(see .env.example)" in result.stderr

    def test_env_example_documents_every_variable_compose_reads(self) -> None:
        referenced = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
        assert referenced - set(read_env_file(ENV_EXAMPLE)) == set()

    def test_dockerfile_base_matches_the_locked_airflow(self) -> None:
        locked = re.search(
            r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M
        )
        base = re.search(
            r"apache/airflow:(\d+\.\d+\.\d+)-python3\.11", (REPO / "Dockerfile").read_text()
        )
        assert locked
        assert base
        assert base.group(1) == locked.group(1)
