"""``make run``: the nightly exports of the default registry for one day, end to end.

Starts the simulators and the local S3 server in this process (free loopback ports, so
it never collides with ``make up``), points every connection at them, migrates a SQLite
metadata database under ``.airflow/run``, runs each registry DAG with ``dag.test()`` for
the data interval ``[DATE 00:00, DATE+1 00:00)`` (default: yesterday), then reads each
export's published manifest back from S3 and prints what landed. Exit code 1 when any
DAG run or export failed. Then it runs the same interval again and checks that every
partition got a new version superseding the first (same rows: reruns never append, and
never overwrite), and that the lake passes ``verify`` (the auditor's check) for the day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.localstack.services import (
    LAKE_BUCKET,
    LocalServices,
    demo_settings,
    simulators_today,
)
from include.localstack.stack import REPO, STATE_DIR, airflow_env, create_pools
from include.simulators.base import free_port


@dataclass
class ExportOutcome:
    dag_id: str
    export: str
    state: str
    rows: int | None = None
    pdfs: int = 0
    uri: str = ""
    seconds: float | None = None
    note: str = ""
    version: str | None = None


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def run_nightly(day: dt.date | None) -> int:
    day = day or yesterday()
    home = STATE_DIR / "run"
    home.mkdir(parents=True, exist_ok=True)
    print(f"make run: nightly exports for the data interval {day} .. {day + dt.timedelta(1)}")
    today = simulators_today()
    with LocalServices(simulator_settings=demo_settings(today), alerts_dir=STATE_DIR) as services:
        env = {
            **airflow_env(home, api_port=free_port(), log_ports=(free_port(), free_port())),
            **services.connection_env(),
        }
        os.environ.update(env)
        started = time.monotonic()
        print("-> migrating the Airflow metadata database (.airflow/run)", flush=True)
        subprocess.run(
            [str(REPO / ".venv/bin/airflow"), "db", "migrate"],
            env=os.environ,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        create_pools(env)
        outcomes = _run_dags(day, services)
        _print_summary(outcomes, time.monotonic() - started)
        _print_alerts(services)
        failed = [o for o in outcomes if o.state not in {"success", "skipped"}]
        if failed or not outcomes:
            return 1
        print("\nSecond run of the same interval (a new version, never an overwrite):")
        problems = _rerun_problems(outcomes, _run_dags(day, services), services, day)
        for problem in problems:
            print(f"  NOT IDEMPOTENT: {problem}")
        if not problems:
            print("  every partition has a new version superseding the first, with the same rows")
        print(
            f"\npython -m compliance_exports verify --from {day} (the lake as an auditor sees it):"
        )
        report = _verify(services, day, [o.export for o in outcomes if o.state == "success"])
        print(report.table())
    return 1 if problems or not report.ok else 0


def _rerun_problems(
    first: list[ExportOutcome], second: list[ExportOutcome], services: LocalServices, day: dt.date
) -> list[str]:
    from compliance_exports.registry import load_registry

    problems = []
    again = {o.export: o for o in second}
    for before in first:
        after = again.get(before.export)
        if after is None or (after.state, after.rows) != (before.state, before.rows):
            got = (after.state, after.rows) if after else "missing"
            problems.append(f"{before.export}: {(before.state, before.rows)} then {got}")
            continue
        if before.version and after.version and before.version == after.version:
            problems.append(f"{before.export}: the rerun published no new version")
            continue
        partition = load_registry().get(before.export).partition(day)
        if before.version and before.version not in _earlier_versions(services, partition):
            problems.append(f"{before.export}: the new version does not supersede the first")
    return problems


def _run_dags(day: dt.date, services: LocalServices) -> list[ExportOutcome]:
    from airflow.dag_processing.dagbag import DagBag

    from compliance_exports.registry import load_registry

    registry = load_registry()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{error}", file=sys.stderr)
        return [ExportOutcome(dag_id="-", export="-", state="import error")]
    outcomes: list[ExportOutcome] = []
    for dag_id, entries in registry.by_dag().items():
        dag = bag.get_dag(dag_id)
        if dag is None:
            outcomes.append(ExportOutcome(dag_id, "-", "missing DAG"))
            continue
        # The interval timetable infers [prev boundary, logical date) for a run whose
        # logical date sits on a boundary: this gives exactly [day, day + 1).
        logical_date = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        log_path = STATE_DIR / "run" / "logs" / f"{dag_id}.log"
        print(f"-> {dag_id}: dag.test() for {day} (log: {log_path})", flush=True)
        t0 = time.monotonic()
        with output_to(log_path):
            dagrun = dag.test(logical_date=logical_date)
        seconds = time.monotonic() - t0
        print(f"   {dagrun.state} in {seconds:.0f}s", flush=True)
        states = {ti.task_id: ti.state for ti in dagrun.get_task_instances()}
        for entry in entries:
            outcomes.append(_outcome(entry, day, dagrun.state, states, seconds, services))
    return outcomes


def _outcome(
    entry: Any,
    day: dt.date,
    dag_state: Any,
    states: dict[str, Any],
    seconds: float,
    services: LocalServices,
) -> ExportOutcome:

    mine = {tid: str(s) for tid, s in states.items() if tid.startswith(f"{entry.name}.")}
    bad = sorted(tid for tid, s in mine.items() if s not in {"success", "skipped"})
    skipped = mine and all(s == "skipped" for s in mine.values())
    partition = entry.partition(day)
    manifest = _read_json(services, partition.manifest_key)
    outcome = ExportOutcome(
        entry.dag_id, entry.name, "failed" if bad else str(dag_state), seconds=seconds
    )
    if skipped:
        outcome.state = "skipped"
    if bad:
        outcome.note = "failed tasks: " + ", ".join(bad)
    if manifest:
        outcome.version = manifest.get("version")
    if manifest and manifest.get("raw", {}).get("format") == "pdf":  # evidence only
        outcome.pdfs = 1
        outcome.uri = f"s3://{LAKE_BUCKET}/{manifest['raw']['key']} (PDF, archived)"
    elif manifest:
        outcome.rows = manifest.get("rows")
        outcome.pdfs = sum(1 for e in manifest.get("evidence", []) if e.get("kind") == "pdf")
        outcome.uri = f"s3://{LAKE_BUCKET}/{partition.curated_prefix}"
    elif not bad and not skipped:
        outcome.state, outcome.note = "failed", "no manifest published"
    return outcome


def _s3_client(services: LocalServices) -> Any:
    import boto3

    conn = services.s3_connection()
    return boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=conn["login"],
        aws_secret_access_key=conn["password"],
    )


def _read_json(services: LocalServices, key: str) -> dict[str, Any] | None:
    client = _s3_client(services)
    try:
        body = client.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    data: dict[str, Any] = json.loads(body)
    return data


def _earlier_versions(services: LocalServices, partition: Any) -> list[str]:
    """The versions the live one supersedes, newest first (each found by its copy)."""
    chain: list[str] = []
    manifest = _read_json(services, partition.manifest_key) or {}
    while manifest.get("supersedes") and len(chain) < 20:
        chain.append(str(manifest["supersedes"]))
        manifest = _read_json(services, partition.version_key(chain[-1])) or {}
    return chain


def _verify(services: LocalServices, day: dt.date, exports: list[str]) -> Any:
    from compliance_exports.registry import load_registry
    from compliance_exports.verify import verify_exports

    registry = load_registry()
    entries = [registry.get(name) for name in exports]
    return verify_exports(entries, day, day, _s3_client(services))


def _print_alerts(services: LocalServices) -> None:
    """What the registry's alerts sent to the local receivers (files kept across runs)."""
    if services.mail is None or services.webhooks is None:
        return
    mails, calls = services.mail.messages(), services.webhooks.calls()
    print(f"\nalerts: {len(mails)} e-mail(s) in {services.mail.directory}/, "
          f"{len(calls)} webhook call(s) in {services.webhooks.directory}/")  # fmt: skip
    for message in mails[-5:]:
        print(f"  mail: {message['Subject']}")


def _print_summary(outcomes: list[ExportOutcome], seconds: float) -> None:
    header = f"{'export':<36} {'state':<8} {'rows':>9} {'PDFs':>5} {'dag s':>6}  landed in"
    print("\n" + header + "\n" + "-" * len(header))
    for o in outcomes:
        rows = "-" if o.rows is None else f"{o.rows:,}"
        secs = "-" if o.seconds is None else f"{o.seconds:.0f}"
        pdfs = str(o.pdfs) if o.pdfs else "-"
        print(f"{o.export:<36} {o.state:<8} {rows:>9} {pdfs:>5} {secs:>6}  {o.uri or o.note}")
    ok = sum(o.state == "success" for o in outcomes)
    print(f"\n{ok}/{len(outcomes)} exports landed in {seconds:.0f}s")
