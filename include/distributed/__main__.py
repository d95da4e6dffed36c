"""``python -m include.distributed up|down|status``: the Celery topology on this host.

``up`` starts a :class:`~include.distributed.stack.DistributedStack` in the
background (processes outlive this command) and records it in
``.airflow/distributed.json``; ``down`` stops what that file records, drops the
database and flushes the broker; ``status`` reports each process and the health
endpoints. Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (override
with ``--pg-dsn`` / ``--redis-url``). See docs/DEPLOYMENT.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from include.distributed.stack import (
    DEFAULT_PG_DSN,
    DEFAULT_REDIS_URL,
    REPO,
    DistributedStack,
    StackError,
)

STATE_FILE = REPO / ".airflow" / "distributed.json"
DEFAULT_HOME = REPO / ".airflow" / "distributed"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m include.distributed", description=__doc__)
    parser.add_argument("--state", type=Path, default=STATE_FILE, help="state file (JSON)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack in the background")
    up.add_argument("--dags-folder", type=Path, default=REPO / "dags")
    up.add_argument(
        "--plugins-folder",
        type=Path,
        default=None,
        help="Airflow plugins folder (default: HOME/plugins)",
    )
    up.add_argument("--home", type=Path, default=DEFAULT_HOME, help="AIRFLOW_HOME and logs")
    up.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    up.add_argument("--worker-concurrency", type=int, default=4, help="task slots per worker")
    up.add_argument("--username", default="admin")
    up.add_argument("--password", default=None, help="default: generated, printed once")
    up.add_argument("--pg-dsn", default=DEFAULT_PG_DSN, help="any database of the server")
    up.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="without a db number")
    up.add_argument(
        "--timeout", type=float, default=480.0, help="seconds to wait for health (default 480)"
    )
    up.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every process, e.g. AIRFLOW_CONN_VEZA_DEFAULT=...",
    )
    commands.add_parser("down", help="stop the stack, drop its database, flush its broker")
    commands.add_parser("status", help="processes and health; exit 1 unless all healthy")
    return parser


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def load_running(state_file: Path) -> DistributedStack | None:
    if not state_file.exists():
        return None
    return DistributedStack.attach(state_file)


def cmd_up(args: argparse.Namespace) -> int:
    existing = load_running(args.state)
    if existing is not None:
        if any(existing.is_running(c) for c in existing.components):
            print(f"already up at {existing.api_url} (state: {args.state}); run `down` first")
            return 1
        existing.stop()  # a stack that died without `down`: drop its database and broker db
    stack = DistributedStack(
        dags_folder=args.dags_folder,
        plugins_folder=args.plugins_folder,
        home=args.home,
        extra_env=parse_env(args.env),
        workers=args.workers,
        worker_concurrency=args.worker_concurrency,
        pg_dsn=args.pg_dsn,
        redis_url=args.redis_url,
        username=args.username,
        password=args.password,
        ready_timeout=args.timeout,
    )
    print(f"starting {', '.join(stack.components)} (logs: {stack.log_dir})", flush=True)
    stack.start()
    stack.save(args.state)
    env_file = write_env_file(stack)
    print(f"up: {stack.api_url}  login {stack.state.username} / {stack.state.password}")
    print(f"database {stack.state.database}, broker {stack.env['AIRFLOW__CELERY__BROKER_URL']}")
    print(f"airflow CLI against it: set -a; . {env_file}; set +a; airflow dags list")
    return 0


def write_env_file(stack: DistributedStack) -> Path:
    """The stack's Airflow settings as KEY=VALUE lines (owner-readable only)."""
    path = stack.home / "airflow.env"
    settings = {k: v for k, v in stack.env.items() if k.startswith("AIRFLOW") or k == "PYTHONPATH"}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.writelines(f"{key}='{value}'\n" for key, value in sorted(settings.items()))
    return path


def cmd_down(args: argparse.Namespace) -> int:
    stack = load_running(args.state)
    if stack is None:
        print(f"nothing to stop (no {args.state})")
        return 0
    stack.stop()
    print(f"down: processes stopped, database {stack.state.database} dropped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = load_running(args.state)
    if stack is None:
        print(f"down (no {args.state})")
        return 1
    print(f"{stack.api_url}  database {stack.state.database}  home {stack.home}")
    running = {c: stack.is_running(c) for c in stack.components}
    for component, alive in running.items():
        pid = stack.state.processes.get(component)
        print(f"  {component:<14} pid {pid}  {'running' if alive else 'STOPPED'}")
    problems = stack.health_problems() if any(running.values()) else ["no process running"]
    print("healthy" if not problems else "unhealthy: " + "; ".join(problems))
    return 0 if not problems and all(running.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return handlers[args.command](args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
