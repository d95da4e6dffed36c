"""Alerts on the local stack, from the components that send them in production: a missed
deadline (the real scheduler finds the missed DeadlineAlert, the real triggerer runs its
AsyncCallback, DeadlineMissedNotifier imported from the installed package) and a failed export (the
DAG processor runs the DAG's failure callback), through the stack's SMTP server and
webhook receiver.

A stack of its own (``make up`` with a registry of one export whose ``deadline`` is one
minute after the interval end), so it never disturbs the session's stack. The run is
created for an interval that ended long ago: its deadline has passed when it is created.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.registry import DEFAULT_REGISTRY
from include.localstack.client import StackClient
from include.localstack.receivers import MailReceiver, WebhookReceiver
from include.simulators.base import free_port
from tests.conftest import _stack_command

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

OLERIA = "oleria_employee_events"
BROKEN = "broken_employee_events"


@pytest.fixture(scope="module")
def late_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, StackClient]]:
    root = tmp_path_factory.mktemp("deadline")
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    defaults = {**shipped["defaults"], "deadline": "1m", "verify": False, "retry_delay": "1s"}
    broken = copy.deepcopy(shipped["exports"][OLERIA])
    broken.update(dag="broken_exports", dataset="broken_events", retries=2)
    broken["schema"]["name"] = "int64"  # the vendor's names do not parse: landing fails
    exports = {OLERIA: shipped["exports"][OLERIA], BROKEN: broken}
    registry = root / "exports.yaml"
    registry.write_text(yaml.safe_dump({"defaults": defaults, "exports": exports}))
    state_dir = root / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    env.update(
        CE_STATE_DIR=str(state_dir),
        CE_API_PORT=str(free_port()),
        CE_S3_PORT=str(free_port()),
        CE_SIM_PORT_BASE="0",
        COMPLIANCE_EXPORTS_REGISTRY=str(registry),
    )
    _stack_command("up", env)
    try:
        info = json.loads((state_dir / "stack.json").read_text())
        client = StackClient.from_stack(info)
        client.wait_for_healthy(timeout=180)
        client.wait_for_dags(["oleria_exports", "broken_exports"], timeout=300)
        yield state_dir, client
    finally:
        _stack_command("down", env)


def test_a_late_run_alerts_every_channel_from_the_triggerer(
    late_stack: tuple[Path, StackClient],
) -> None:
    state_dir, client = late_stack
    stack = json.loads((state_dir / "stack.json").read_text())
    assert stack["alerts"]["mail_dir"] == str(state_dir / "mail")
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    client.set_paused("oleria_exports", False)
    run = client.rest(
        "POST", "/api/v2/dags/oleria_exports/dagRuns", json={"logical_date": logical.isoformat()}
    )
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]

    mails, calls = _wait_for_alerts(state_dir, run_id, timeout=240)

    # one message per late run on each channel (the scheduler's own run of the latest
    # interval, created on unpause, is late too): ours among them, once
    assert {m["Subject"] for m in mails} == {"[compliance-exports] oleria_exports is late (1m)"}
    assert [run_id in _text(m) for m in mails].count(True) == 1
    assert len({_run_named(_text(m)) for m in mails}) == len(mails), "one message per run"
    assert [run_id in c["json"]["message"] for c in calls].count(True) == 1
    assert len(calls) == len(mails)


def _text(message: Any) -> str:
    return str(message.get_body(preferencelist=("html",)).get_content())


def _run_named(text: str) -> str:
    return text.split("has not finished run ", 1)[1].split(" ", 1)[0]


def _wait_for_alerts(state_dir: Path, run_id: str, timeout: float) -> tuple[list[Any], list[Any]]:
    """The late-run e-mails and webhook calls, once both channels told of ``run_id``."""
    mail, hooks = MailReceiver(state_dir / "mail"), WebhookReceiver(state_dir / "webhooks")
    deadline = time.monotonic() + timeout
    while True:
        mails = [m for m in mail.messages() if "is late" in str(m["Subject"])]
        calls = [c for c in hooks.calls() if "is late" in c["json"]["title"]]
        told = any(run_id in _text(m) for m in mails) and any(
            run_id in c["json"]["message"] for c in calls
        )
        if told or time.monotonic() > deadline:
            time.sleep(5)  # anything else on its way arrives too
            mails = [m for m in mail.messages() if "is late" in str(m["Subject"])]
            calls = [c for c in hooks.calls() if "is late" in c["json"]["title"]]
            return mails, calls
        time.sleep(3)


def test_a_failed_export_alerts_from_the_dag_processor(
    late_stack: tuple[Path, StackClient],
) -> None:
    """The failure callback as the real DAG processor runs it (task states and XComs
    through the Task SDK's API): one e-mail for the failed export, its error, a log link
    to the stack's UI."""
    state_dir, client = late_stack
    api_url = json.loads((state_dir / "stack.json").read_text())["api_url"]
    logical = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=4)
    client.set_paused("broken_exports", False)
    run = client.rest(
        "POST", "/api/v2/dags/broken_exports/dagRuns", json={"logical_date": logical.isoformat()}
    )
    assert run.status_code == 200, run.text
    run_id = run.json()["dag_run_id"]
    mail = MailReceiver(state_dir / "mail")

    found: list[Any] = []
    give_up = time.monotonic() + 300
    while not found and time.monotonic() < give_up:
        time.sleep(3)
        found = [m for m in mail.messages() if f"{BROKEN} failed" in str(m["Subject"])]
        found = [m for m in found if run_id in _text(m)]
    time.sleep(5)
    mine = [m for m in mail.messages() if run_id in _text(m) and "failed" in str(m["Subject"])]

    assert len(mine) == 1, [m["Subject"] for m in mail.messages()]
    text = _text(mine[0])
    assert f"Export {BROKEN} failed" in text
    assert "Error: BadRowError" in text
    assert f"{api_url}/dags/broken_exports/runs/" in text
    assert f"/tasks/{BROKEN}.land/mapped/0" in text
