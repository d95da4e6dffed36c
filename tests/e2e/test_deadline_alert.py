"""A missed deadline alerts on the local stack: the real scheduler finds the missed
DeadlineAlert and the real triggerer runs its AsyncCallback (DeadlineMissedNotifier,
imported from plugins/), which sends through the stack's SMTP server and webhook receiver.

A stack of its own (``make up`` with a registry of one export whose ``deadline`` is one
minute after the interval end), so it never disturbs the session's stack. The run is
created for an interval that ended long ago: its deadline has passed when it is created.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def late_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, StackClient]]:
    root = tmp_path_factory.mktemp("deadline")
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    defaults = {**shipped["defaults"], "deadline": "1m", "verify": False}
    registry = root / "exports.yaml"
    registry.write_text(
        yaml.safe_dump({"defaults": defaults, "exports": {OLERIA: shipped["exports"][OLERIA]}})
    )
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
        client.wait_for_dags(["oleria_exports"], timeout=300)
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
