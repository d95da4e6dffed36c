"""``python -m include.localstack up|down|status|run|serve`` (the Makefile's targets).

up       start simulators + local S3 + airflow standalone in the background
down     stop everything ``up`` started (by recorded process group)
status   what is running, and the api-server's health
run      the main job: nightly exports for one data interval end to end, then a summary
serve    (internal) run the simulators and the local S3 server in the foreground
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    from include.localstack.services import (
        LocalServices,
        ServicePorts,
        demo_settings,
        simulators_today,
    )

    today = simulators_today()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ports = ServicePorts(s3=args.s3_port, simulator_base=args.sim_port_base)
    services = LocalServices(
        ports=ports,
        seed=args.seed,
        simulator_settings=demo_settings(today),
        alerts_dir=Path(args.state_file).resolve().parent,  # .airflow/mail, .airflow/webhooks
    )
    with services:
        state = {"describe": services.describe(), "connection_env": services.connection_env()}
        tmp = Path(args.state_file).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(args.state_file)
        print(json.dumps(state["describe"], indent=2), flush=True)
        stop.wait()
    return 0


def _up(_: argparse.Namespace) -> int:
    from include.localstack.stack import STACK_ENV_FILE, STACK_FILE, StackPorts, up

    stack = up(StackPorts())
    print(f"Local stack is up (recorded in {_shown(STACK_FILE)}):")
    print(
        f"  Airflow UI / API  {stack['api_url']}  (login {stack['login']['username']}"
        f" / {stack['login']['password']})"
    )
    print(f"  local S3          {stack['s3']['endpoint_url']}  bucket {stack['s3']['bucket']}")
    for vendor, sim in stack["simulators"].items():
        print(f"  {vendor:<17} {sim['base_url']}  (admin: {sim['admin']})")
    print(f"  logs              {stack['logs']}")
    if "alerts" in stack:
        alerts = stack["alerts"]
        print(f"  alert e-mails     {alerts['mail_dir']}/*.eml  (SMTP {alerts['smtp']})")
        print(f"  alert webhooks    {alerts['webhooks_dir']}/*.json  ({alerts['webhook_url']})")
    print("Point a shell's airflow CLI at this stack:")
    print(f"  source {_shown(STACK_ENV_FILE)} && .venv/bin/airflow dags list")
    print("Stop it with: make down")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _down(_: argparse.Namespace) -> int:
    from include.localstack.stack import down

    stopped = down()
    print("stopped: " + ", ".join(stopped) if stopped else "no local stack was running")
    return 0


def _status(_: argparse.Namespace) -> int:
    from include.localstack.stack import status

    print(json.dumps(status(), indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    from include.localstack.nightly import run_nightly

    return run_nightly(args.date)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"DATE must be YYYY-MM-DD, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.localstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the local stack in the background").set_defaults(fn=_up)
    sub.add_parser("down", help="stop the local stack").set_defaults(fn=_down)
    sub.add_parser("status", help="show the local stack").set_defaults(fn=_status)
    run = sub.add_parser("run", help="run the nightly exports for one day, end to end")
    run.add_argument(
        "--date", type=_date, default=None, help="the data interval's day (default: yesterday, UTC)"
    )
    run.set_defaults(fn=_run)
    serve = sub.add_parser("serve", help="(internal) simulators + local S3 in the foreground")
    serve.add_argument("--state-file", required=True)
    serve.add_argument("--s3-port", type=int, default=0)
    serve.add_argument("--sim-port-base", type=int, default=0)
    serve.add_argument("--seed", type=int, default=20261121)
    serve.set_defaults(fn=_serve)
    args = parser.parse_args(argv)
    result: int = args.fn(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
