"""DistributedStack without starting Airflow: environment, state, ownership, the CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from include.distributed import COMPONENTS, DistributedStack, StackState
from include.distributed.__main__ import main, parse_env
from include.distributed.stack import group_alive

RECIPE_KEYS = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
)


def make_stack(tmp_path: Path, **kwargs: object) -> DistributedStack:
    stack = DistributedStack(
        dags_folder=tmp_path / "dags",
        plugins_folder=tmp_path / "plugins",
        home=tmp_path / "home",
        **kwargs,  # type: ignore[arg-type]
    )
    stack.state.ports = stack._choose_ports()
    stack.state.redis_db = 7
    return stack


class TestEnvironment:
    def test_has_every_setting_the_recipe_requires(self, tmp_path: Path) -> None:
        env = make_stack(tmp_path).env
        assert [key for key in RECIPE_KEYS if not env.get(key)] == []
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/7"

    def test_database_and_result_backend_name_the_run_database(self, tmp_path: Path) -> None:
        stack = make_stack(tmp_path)
        env = stack.env
        sql = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{stack.state.database}"
        assert stack.state.database.startswith("ce_")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == sql
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{sql}"

    def test_drops_airflow_settings_inherited_from_the_caller(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "True")
        monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "3")
        monkeypatch.setenv("AIRFLOW_CONFIG", "/elsewhere/airflow.cfg")
        env = make_stack(tmp_path).env
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT" not in env
        assert "AIRFLOW_CONFIG" not in env
        assert env["AIRFLOW_HOME"] == str((tmp_path / "home").resolve())

    def test_connections_and_variables_pass_through(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_VEZA_DEFAULT", '{"conn_type": "veza"}')
        monkeypatch.setenv("AIRFLOW_VAR_LAKE_BUCKET", "compliance-lake")
        env = make_stack(tmp_path).env
        assert env["AIRFLOW_CONN_VEZA_DEFAULT"] == '{"conn_type": "veza"}'
        assert env["AIRFLOW_VAR_LAKE_BUCKET"] == "compliance-lake"

    def test_extra_env_wins(self, tmp_path: Path) -> None:
        extra = {"AIRFLOW__CORE__PARALLELISM": "3", "AIRFLOW_CONN_X": "{}"}
        env = make_stack(tmp_path, extra_env=extra).env
        assert env["AIRFLOW__CORE__PARALLELISM"] == "3"
        assert env["AIRFLOW_CONN_X"] == "{}"

    def test_plugins_folder_and_repo_are_importable(self, tmp_path: Path) -> None:
        paths = make_stack(tmp_path).env["PYTHONPATH"].split(os.pathsep)
        assert str((tmp_path / "plugins").resolve()) in paths
        assert str(Path(__file__).resolve().parents[2]) in paths

    def test_secrets_are_fresh_per_stack_and_stable_per_stack(self, tmp_path: Path) -> None:
        first, second = make_stack(tmp_path), make_stack(tmp_path)
        key = "AIRFLOW__API_AUTH__JWT_SECRET"
        assert first.env[key] == first.env[key]
        assert first.env[key] != second.env[key]

    def test_ports_are_distinct(self, tmp_path: Path) -> None:
        ports = make_stack(tmp_path, workers=3).state.ports
        assert set(ports) == {"api", "scheduler", "triggerer", "worker-1", "worker-2", "worker-3"}
        assert len(set(ports.values())) == len(ports)


class TestComponents:
    def test_default_topology(self, tmp_path: Path) -> None:
        assert make_stack(tmp_path).components == COMPONENTS

    def test_workers_get_distinct_celery_names(self, tmp_path: Path) -> None:
        stack = make_stack(tmp_path)
        assert stack._command("worker-2")[:4] == [
            "celery",
            "worker",
            "--celery-hostname",
            "worker-2@%h",
        ]

    def test_unknown_component_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="unknown component"):
            make_stack(tmp_path).kill("webserver")

    def test_needs_a_worker(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="at least one worker"):
            make_stack(tmp_path, workers=0)


class TestState:
    def test_round_trip_through_a_private_file(self, tmp_path: Path) -> None:
        stack = make_stack(tmp_path)
        stack.state.processes = {"scheduler": 1234}
        path = tmp_path / "state" / "distributed.json"
        stack.save(path)
        assert StackState.load(path) == stack.state
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_attached_stack_reaches_the_same_api(self, tmp_path: Path) -> None:
        stack = make_stack(tmp_path)
        stack.save(tmp_path / "state.json")
        attached = DistributedStack.attach(tmp_path / "state.json")
        assert attached.api_url == stack.api_url
        assert (
            attached.env["AIRFLOW__API_AUTH__JWT_SECRET"]
            == stack.env["AIRFLOW__API_AUTH__JWT_SECRET"]
        )


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process group that belongs to somebody else (another AIRFLOW_HOME)."""
    env = {**os.environ, "AIRFLOW_HOME": "/somewhere/else"}
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True
    )
    yield process
    process.kill()
    process.wait()


class TestOwnership:
    @pytest.mark.parametrize("recorded_start", [None, 0.0])
    def test_attached_stack_never_signals_a_group_it_does_not_own(
        self, tmp_path: Path, stranger: subprocess.Popen[bytes], recorded_start: float | None
    ) -> None:
        """The recorded id is now another group (no start time, or another start time)."""
        stack = make_stack(tmp_path)
        stack.state.processes = {"scheduler": stranger.pid}
        if recorded_start is not None:
            stack.state.started = {"scheduler": recorded_start}
        stack.save(tmp_path / "state.json")
        attached = DistributedStack.attach(tmp_path / "state.json")
        attached._database_created = False  # nothing to drop in this test
        attached.state.redis_db = -1

        assert not attached.is_running("scheduler")
        attached.stop(timeout=1)
        assert not (tmp_path / "state.json").exists()

        assert stranger.poll() is None
        assert group_alive(stranger.pid)

    def test_attached_stack_stops_the_group_it_started(
        self, tmp_path: Path, stranger: subprocess.Popen[bytes]
    ) -> None:
        stack = make_stack(tmp_path)
        stack.state.processes = {"scheduler": stranger.pid}
        stack.state.started = {"scheduler": psutil.Process(stranger.pid).create_time()}
        stack.save(tmp_path / "state.json")
        attached = DistributedStack.attach(tmp_path / "state.json")
        attached._database_created = False
        attached.state.redis_db = -1

        assert attached.is_running("scheduler")
        attached.stop(timeout=5)

        assert stranger.wait(timeout=10) is not None
        assert not group_alive(stranger.pid)
        assert attached.state.processes == {}

    def test_stop_also_ends_descendants_in_groups_of_their_own(self, tmp_path: Path) -> None:
        """A worker's task runners sit in their own process groups (setpgid): stop reaches them."""
        pid_file = tmp_path / "runner.pid"
        worker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import subprocess, sys, time\n"
                "runner = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
                " start_new_session=True)\n"
                f"open({str(pid_file)!r}, 'w').write(str(runner.pid))\n"
                "time.sleep(120)\n",
            ],
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not pid_file.exists() or not pid_file.read_text():
                assert time.monotonic() < deadline, "the worker never started its runner"
                time.sleep(0.05)
            runner = psutil.Process(int(pid_file.read_text()))
            stack = make_stack(tmp_path)
            stack.state.processes = {"scheduler": worker.pid}
            stack.state.started = {"scheduler": psutil.Process(worker.pid).create_time()}
            stack._database_created = False
            stack.state.redis_db = -1

            stack.stop(timeout=5)

            assert worker.wait(timeout=10) is not None
            assert not runner.is_running() or runner.status() == psutil.STATUS_ZOMBIE
        finally:
            worker.kill()
            worker.wait()


class TestCli:
    def test_parse_env(self) -> None:
        assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
        with pytest.raises(SystemExit):
            parse_env(["novalue"])

    def test_status_without_a_stack(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["--state", str(tmp_path / "none.json"), "status"]) == 1
        assert "down" in capsys.readouterr().out

    def test_down_without_a_stack(self, tmp_path: Path) -> None:
        assert main(["--state", str(tmp_path / "none.json"), "down"]) == 0
