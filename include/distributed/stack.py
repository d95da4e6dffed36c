"""docker-compose.yaml's Airflow topology as native processes on this host.

One :class:`DistributedStack` is one throwaway Airflow deployment:

* a fresh PostgreSQL database (``ce_<hex>``) on the local server, dropped at stop;
* a Redis db number claimed on the local Redis for the Celery broker, flushed at stop;
* ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and N
  ``celery worker`` processes, each the leader of its own process group (``setsid``)
  and stopped by group, so no serve-logs child survives holding a port;
* the per-vendor pools (``include_deferred``) and a simple-auth-manager login.

Every process gets the same environment (:attr:`DistributedStack.env`): a process that
misses one setting writes its own airflow.cfg with SQLite, LocalExecutor and random
secrets and silently diverges. The only per-process difference is the log-server
port of each Celery worker (two workers on one host cannot share it).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

VENDOR_POOLS: dict[str, int] = {"oleria": 4, "veza": 4, "sailpoint": 4, "maxsight": 4}
"""Default slots per vendor pool; the pools count deferred tasks (include_deferred)."""

SERVICES: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
COMPONENTS: tuple[str, ...] = (*SERVICES, "worker-1", "worker-2")
"""The components of a stack with the default two workers, in start order."""

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
CLAIM_KEY = "compliance-exports:distributed-stack"
HEALTHY = "healthy"
KILL_GRACE = 10.0  # seconds a SIGKILLed group may take to disappear
START_TIME_TOLERANCE = 0.05  # seconds; /proc start times tick at 1/100 s


class StackError(RuntimeError):
    """The stack failed to start, to become healthy, or to answer a request."""


@dataclass
class StackState:
    """What a running stack is: enough to reach it and to tear it down from another process."""

    home: str
    dags_folder: str
    plugins_folder: str
    database: str
    username: str
    password: str
    pg_dsn: str = DEFAULT_PG_DSN
    redis_url: str = DEFAULT_REDIS_URL
    redis_db: int = -1
    workers: int = 2
    worker_concurrency: int = 4
    triggerers: int = 1  # "triggerer", then "triggerer-2", ... (add_triggerer)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)  # component -> pid == pgid
    started: dict[str, float] = field(default_factory=dict)  # component -> leader create time
    secrets: dict[str, str] = field(default_factory=dict)  # shared by every process
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StackState:
        return cls(**data)

    def save(self, path: Path) -> None:
        """Write the state as JSON, readable by the owner only (it holds the secrets)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> StackState:
        return cls.from_dict(json.loads(path.read_text()))


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` on any interface."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def group_alive(pgid: int) -> bool:
    """True while process group ``pgid`` has a live (non-zombie) process."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(_is_live(process) for process in group_members(pgid))


def _is_live(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def group_members(pgid: int) -> list[psutil.Process]:
    """The processes of process group ``pgid``."""
    members = []
    for process in psutil.process_iter():
        with suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(process.pid) == pgid:
                members.append(process)
    return members


def descendant_groups(pid: int) -> set[int]:
    """Process groups of ``pid``'s descendants other than ``pid``'s own group."""
    try:
        own = os.getpgid(pid)
    except ProcessLookupError:
        return set()
    groups = set()
    for child in descendants_of(pid):
        with suppress(ProcessLookupError, psutil.Error):
            groups.add(os.getpgid(child.pid))
    return groups - {own}


def descendants_of(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (any process group)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_survivors(processes: list[psutil.Process]) -> list[str]:
    """SIGKILL the ``processes`` still alive; describe any that outlive the grace period.

    psutil checks each process's start time before signalling, so a pid reused by an
    unrelated process since the list was taken is never touched.
    """
    alive = [p for p in processes if _is_live(p)]
    for process in alive:
        with suppress(psutil.Error):
            process.kill()
    deadline = time.monotonic() + KILL_GRACE
    while any(_is_live(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.1)  # not our children, so not ours to wait for: zombies count as gone
    return [f"pid {p.pid} survives SIGKILL" for p in alive if _is_live(p)]


def _new_fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _database_url(pg_dsn: str, database: str, driver: str = "postgresql+psycopg2") -> str:
    """``pg_dsn`` (a libpq URL of any database on the server) pointed at ``database``."""
    server = pg_dsn.split("://", 1)[1].rsplit("/", 1)[0]
    return f"{driver}://{server}/{database}"


class DistributedStack:
    """Airflow with the CeleryExecutor on the local PostgreSQL and Redis, as processes.

    >>> with DistributedStack(dags_folder=..., home=...) as stack:
    ...     stack.rest("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    """

    def __init__(
        self,
        *,
        dags_folder: Path | str,
        home: Path | str,
        plugins_folder: Path | str | None = None,  # None: <home>/plugins (Airflow's default)
        extra_env: Mapping[str, str] | None = None,
        workers: int = 2,
        worker_concurrency: int = 4,
        pools: Mapping[str, int] | None = None,
        pg_dsn: str = DEFAULT_PG_DSN,
        redis_url: str = DEFAULT_REDIS_URL,
        username: str = "admin",
        password: str | None = None,
        ready_timeout: float = 480.0,
    ) -> None:
        if workers < 1:
            raise ValueError("a Celery stack needs at least one worker")
        self.pools = dict(VENDOR_POOLS if pools is None else pools)
        self.ready_timeout = ready_timeout
        self.state = StackState(
            home=str(Path(home).resolve()),
            dags_folder=str(Path(dags_folder).resolve()),
            plugins_folder=str(Path(plugins_folder or Path(home) / "plugins").resolve()),
            database=f"ce_{secrets.token_hex(6)}",
            username=username,
            password=password or secrets.token_urlsafe(16),
            pg_dsn=pg_dsn,
            redis_url=redis_url,
            workers=workers,
            worker_concurrency=worker_concurrency,
            secrets={
                "AIRFLOW__CORE__FERNET_KEY": _new_fernet_key(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            },
            extra_env=dict(extra_env or {}),
        )
        self._popen: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None
        self.state_file: Path | None = None
        self._database_created = False

    # -- identity -------------------------------------------------------------------

    @property
    def components(self) -> tuple[str, ...]:
        return (
            *SERVICES,
            *(f"triggerer-{n}" for n in range(2, self.state.triggerers + 1)),
            *(f"worker-{n}" for n in range(1, self.state.workers + 1)),
        )

    @property
    def api_url(self) -> str:
        return self.state.api_url

    @property
    def home(self) -> Path:
        return Path(self.state.home)

    @property
    def airflow_bin(self) -> str:
        return str(Path(sys.executable).with_name("airflow"))

    @property
    def log_dir(self) -> Path:
        return self.home / "process-logs"

    @property
    def env(self) -> dict[str, str]:
        """The one environment every process of the stack runs with."""
        return {**_inherited_env(), **self._airflow_env(), **self.state.extra_env}

    def _airflow_env(self) -> dict[str, str]:
        state, ports = self.state, self.state.ports
        sql = _database_url(state.pg_dsn, state.database)
        api = f"http://127.0.0.1:{ports['api']}"
        return {
            "AIRFLOW_HOME": str(self.home),
            "PYTHONPATH": os.pathsep.join([str(REPO), state.plugins_folder]),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": state.dags_folder,
            "AIRFLOW__CORE__PLUGINS_FOLDER": state.plugins_folder,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(4 * state.workers),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{state.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
            "AIRFLOW__CELERY__BROKER_URL": f"{state.redis_url}/{state.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(state.worker_concurrency),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ports["api"]),
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports["scheduler"]),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker-1"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["triggerer"]),
            **state.secrets,
        }

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> DistributedStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create the database and broker db, migrate, seed the login, start, wait, add pools."""
        try:
            self._prepare()
            for component in self.components:
                self._spawn(component)
            self.wait_healthy()
            self._create_pools()
        except BaseException:
            self.stop()
            raise

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.state.ports = self._choose_ports()
        self._create_database()
        self.state.redis_db = self._claim_redis_db()
        self.passwords_file.write_text(json.dumps({self.state.username: self.state.password}))
        self.airflow("db", "migrate")

    def _choose_ports(self) -> dict[str, int]:
        names = ["api", "scheduler", "triggerer"]
        names += [f"worker-{n}" for n in range(1, self.state.workers + 1)]
        ports: dict[str, int] = {}
        while len(ports) < len(names):
            port = free_port()
            if port not in ports.values():
                ports[names[len(ports)]] = port
        return ports

    def _create_pools(self) -> None:
        """The vendor pools, counting deferred tasks (REST: no extra CLI start-up)."""
        for name, slots in self.pools.items():
            pool = {
                "name": name,
                "slots": slots,
                "description": f"Concurrent {name} exports, deferred included",
                "include_deferred": True,
            }
            response = self.rest("POST", "/api/v2/pools", json=pool)
            if response.status_code == 409:
                response = self.rest("PATCH", f"/api/v2/pools/{name}", json=pool)
            if response.status_code >= 300:
                raise StackError(f"pool {name}: HTTP {response.status_code} {response.text}")

    def add_triggerer(self) -> str:
        """Start one more triggerer (high availability); return its component name.

        Triggers stay with the triggerer that runs them while it heartbeats; a trigger
        whose triggerer has missed its heartbeat for ``triggerer_health_check_threshold``
        seconds is taken over by another one.
        """
        self.state.triggerers += 1
        component = f"triggerer-{self.state.triggerers}"
        port = free_port()
        while port in self.state.ports.values():
            port = free_port()
        self.state.ports[component] = port
        self._spawn(component)
        return component

    def _spawn(self, component: str) -> None:
        env = self.env
        if component.startswith("worker-"):
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(self.state.ports[component])
        elif component.startswith("triggerer-"):
            env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(self.state.ports[component])
        log = (self.log_dir / f"{component}.log").open("ab")
        with log:
            process = subprocess.Popen(  # noqa: S603 - our own venv's airflow, fixed args
                [self.airflow_bin, *self._command(component)],
                env=env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._popen[component] = process
        self.state.processes[component] = process.pid
        self.state.started[component] = psutil.Process(process.pid).create_time()
        self._persist()

    def _command(self, component: str) -> list[str]:
        if component.startswith("worker-"):
            return [
                "celery",
                "worker",
                "--celery-hostname",
                f"{component}@%h",
                "--concurrency",
                str(self.state.worker_concurrency),
            ]
        if component.startswith("triggerer-"):
            return ["triggerer"]
        if component == "api-server":
            return ["api-server", "--host", "127.0.0.1", "--port", str(self.state.ports["api"])]
        if component in SERVICES:
            return [component]
        raise ValueError(f"unknown component {component!r}; known: {', '.join(self.components)}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every process group (TERM, then KILL), drop the database, flush the broker.

        Idempotent: a second call finds nothing left to stop.
        """
        running = [c for c in reversed(self.components) if self.is_running(c)]
        # taken before the signals: once a worker is gone its task runners (each in a
        # process group of its own) are orphans no longer found under it
        descendants = [p for c in running for p in descendants_of(self.state.processes[c])]
        for component in running:
            self._signal(component, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        survivors = []
        for component in running:
            try:
                self._wait_gone(component, max(0.0, deadline - time.monotonic()))
            except StackError as exc:
                survivors.append(str(exc))
        survivors += kill_survivors(descendants)
        self._release_redis_db()
        self._drop_database()
        self._token = None
        if survivors:
            raise StackError("; ".join(survivors))
        self.state.processes.clear()
        self.state.started.clear()
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    def kill(self, component: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process tree of one component, as a host crash would.

        That is its process group and the groups of its descendants: Airflow 3.3's task
        supervisor puts each task runner in a group of its own (``setpgid``), so signalling
        a worker's group alone would leave its running tasks alive as orphans.
        """
        self._check_component(component)
        if not self.is_running(component):
            raise StackError(f"{component} is not running")
        own = self.state.processes[component]
        descendants = descendant_groups(own)
        self._signal(component, sig)
        for pgid in descendants:
            with suppress(ProcessLookupError):
                os.killpg(pgid, sig)

    def restart(self, component: str, timeout: float = 30.0) -> None:
        """Stop one component (if still running) and start a fresh process for it."""
        self._check_component(component)
        if self.is_running(component):
            self._signal(component, signal.SIGTERM)
        self._wait_gone(component, timeout)
        self._spawn(component)

    def is_running(self, component: str) -> bool:
        """True while the component's process group has a live process of this stack."""
        pgid = self.state.processes.get(component)
        if pgid is None:
            return False
        self._reap(component)
        if not group_alive(pgid):
            return False
        return component in self._popen or self._owns_group(component, pgid)

    def _owns_group(self, component: str, pgid: int) -> bool:
        """For a stack started by another process: is ``pgid`` still the group we started?

        Guards ``down`` against a recorded id reused by an unrelated group (after a
        reboot, say). The leader must have the recorded start time; without a leader,
        (its orphans keep the group, and so its id, alive) members must be younger.
        """
        started = self.state.started.get(component)
        if started is None:
            return False
        try:
            return abs(psutil.Process(pgid).create_time() - started) < START_TIME_TOLERANCE
        except psutil.NoSuchProcess:
            pass
        with suppress(psutil.Error):
            members = group_members(pgid)
            return any(m.create_time() >= started - START_TIME_TOLERANCE for m in members)
        return False

    def _check_component(self, component: str) -> None:
        if component not in self.components:
            known = ", ".join(self.components)
            raise ValueError(f"unknown component {component!r}; known: {known}")

    def _signal(self, component: str, sig: signal.Signals) -> None:
        pgid = self.state.processes.get(component)
        if pgid is not None:
            with suppress(ProcessLookupError):
                os.killpg(pgid, sig)

    def _reap(self, component: str) -> None:
        process = self._popen.get(component)
        if process is not None:
            process.poll()

    def _wait_gone(self, component: str, timeout: float) -> None:
        """Wait for a group to empty (KILL it at ``timeout``), then forget its id.

        A process group id can be reused once the group is empty, so the stack never
        signals a group it has seen empty.
        """
        deadline = time.monotonic() + timeout
        while self.is_running(component) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.is_running(component):
            self._signal(component, signal.SIGKILL)
            deadline = time.monotonic() + KILL_GRACE
            while self.is_running(component):
                if time.monotonic() > deadline:
                    raise StackError(f"{component} survives SIGKILL (uninterruptible sleep?)")
                time.sleep(0.1)
        self.state.processes.pop(component, None)
        self.state.started.pop(component, None)
        self._popen.pop(component, None)
        self._persist()

    # -- backing services ---------------------------------------------------------------

    @contextmanager
    def _postgres(self) -> Iterator[Any]:
        import psycopg2

        conn = psycopg2.connect(self.state.pg_dsn)
        conn.autocommit = True
        try:
            yield conn.cursor()
        finally:
            conn.close()

    def _create_database(self) -> None:
        with self._postgres() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.state.database}"')
        self._database_created = True

    def _drop_database(self) -> None:
        if not self._database_created:
            return
        with self._postgres() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.state.database}" WITH (FORCE)')
        self._database_created = False

    def database_exists(self) -> bool:
        with self._postgres() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.state.database,))
            return cursor.fetchone() is not None

    def broker_size(self, db: int) -> int:
        """Number of keys in Redis db ``db`` (0 once a stopped stack flushed its broker)."""
        size: int = self._redis(db).dbsize()
        return size

    def _redis(self, db: int) -> Any:
        import redis

        return redis.Redis.from_url(f"{self.state.redis_url}/{db}")

    def _claim_redis_db(self) -> int:
        """The first empty Redis db number (1 and up), claimed with a marker key."""
        databases = int(self._redis(0).config_get("databases").get("databases", 16))
        for db in range(1, databases):
            client = self._redis(db)
            if client.dbsize() == 0 and client.set(CLAIM_KEY, self.state.database, nx=True):
                return db
        raise StackError(f"no empty Redis db among 1..{databases - 1} at {self.state.redis_url}")

    def _release_redis_db(self) -> None:
        if self.state.redis_db < 0:
            return
        client = self._redis(self.state.redis_db)
        claimed = client.get(CLAIM_KEY)
        if claimed is None or claimed.decode() == self.state.database:
            client.flushdb()
        self.state.redis_db = -1

    # -- health -------------------------------------------------------------------------

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Block until the API, scheduler, dag-processor, triggerer and workers are up."""
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        problems = ["not checked yet"]
        while time.monotonic() < deadline:
            self._raise_if_exited()
            problems = self.health_problems()
            if not problems:
                return
            time.sleep(1.0)
        raise StackError(f"stack not healthy after the timeout: {'; '.join(problems)}")

    def _raise_if_exited(self) -> None:
        for component, process in self._popen.items():
            if process.poll() is not None:
                log = self.log_dir / f"{component}.log"
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise StackError(f"{component} exited with {process.returncode}:\n{tail}")

    def health_problems(self) -> list[str]:
        """What is not healthy yet (an empty list: everything is)."""
        try:
            with httpx.Client(base_url=self.api_url, timeout=5) as client:
                problems = _monitor_problems(client.get("/api/v2/monitor/health"))
                execution = client.get("/execution/health")
        except httpx.HTTPError as exc:
            return [f"api-server: {exc.__class__.__name__}"]
        if execution.status_code != 200:
            problems.append(f"execution API: HTTP {execution.status_code}")
        missing = self._workers_missing()
        if missing:
            problems.append(f"celery workers not answering: {', '.join(missing)}")
        return problems

    def _workers_missing(self) -> list[str]:
        from celery import Celery

        broker = f"{self.state.redis_url}/{self.state.redis_db}"
        app = Celery(broker=broker)
        try:
            replies = app.control.ping(timeout=1.0)
        finally:
            app.close()
        answered = {name.split("@", 1)[0] for reply in replies for name in reply}
        expected = [f"worker-{n}" for n in range(1, self.state.workers + 1)]
        return [name for name in expected if name not in answered]

    # -- using the stack ------------------------------------------------------------------

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this stack (same environment as its processes)."""
        result = subprocess.run(  # noqa: S603 - our own venv's airflow
            [self.airflow_bin, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise StackError(
                f"airflow {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def token(self, *, refresh: bool = False) -> str:
        """A JWT for the REST API (``POST /auth/token`` with the stack's login)."""
        if self._token is None or refresh:
            credentials = {"username": self.state.username, "password": self.state.password}
            response = httpx.post(f"{self.api_url}/auth/token", json=credentials, timeout=30)
            if response.status_code >= 300:
                raise StackError(f"login failed: HTTP {response.status_code} {response.text}")
            self._token = str(response.json()["access_token"])
        return self._token

    def rest(self, method: str, path: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        """One authenticated call to the REST API; a 401 refreshes the token once."""
        response = self._request(method, path, json=json, **kwargs)
        if response.status_code == 401:
            self.token(refresh=True)
            response = self._request(method, path, json=json, **kwargs)
        return response

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.request(method, f"{self.api_url}{path}", headers=headers, timeout=30, **kwargs)

    # -- persistence for the CLI ---------------------------------------------------------

    def save(self, path: Path) -> None:
        """Record the stack in ``path`` and keep that file current from now on.

        Restarts rewrite it; a complete stop deletes it (a state file always describes
        a stack that may be running).
        """
        self.state_file = path
        self._persist()

    def _persist(self) -> None:
        if self.state_file is not None:
            self.state.save(self.state_file)

    @classmethod
    def attach(cls, state_file: Path) -> DistributedStack:
        """A handle on the stack recorded in ``state_file`` by another process."""
        state = StackState.load(state_file)
        stack = cls(
            dags_folder=state.dags_folder,
            plugins_folder=state.plugins_folder,
            home=state.home,
            workers=state.workers,
        )
        stack.state = state
        stack.state_file = state_file
        stack._database_created = True
        return stack


def _inherited_env() -> dict[str, str]:
    """This process' environment without Airflow configuration (the stack sets its own).

    ``AIRFLOW_CONN_*`` and ``AIRFLOW_VAR_*`` pass through: connections exported in the
    shell (``python -m include.simulators`` prints them) reach every process.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_HOME", "AIRFLOW_CONFIG"))
    }


def _monitor_problems(response: httpx.Response) -> list[str]:
    if response.status_code != 200:
        return [f"monitor/health: HTTP {response.status_code}"]
    body: dict[str, Any] = response.json()
    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return [
        f"{name}: {(body.get(name) or {}).get('status')}"
        for name in wanted
        if (body.get(name) or {}).get("status") != HEALTHY
    ]
