"""The registry's ``alerts`` and ``deadline``: validation, the DAG's callbacks and
DeadlineAlert, and messages delivered to a real SMTP server (aiosmtpd) and a real HTTP
receiver on loopback (include/localstack/receivers.py).

The deadline's notifier runs here exactly as the triggerer runs it: Airflow's own
``CallbackTrigger`` imports it by path and awaits it with the JSON kwargs the DAG
serialized and the simple context the scheduler attaches to a missed deadline.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.alerts import (
    AlertChannels,
    AppriseChannel,
    EmailChannel,
    RunAlerts,
    RunFacts,
    parse_deadline,
)
from compliance_exports.registry import DEFAULT_REGISTRY, RegistryError, parse_registry
from include.localstack.receivers import MailReceiver, WebhookReceiver

OLERIA = "oleria_employee_events"
ALERTS = {
    "email": {"conn_id": "smtp_alerts", "to": ["security@example.com"]},
    "webhooks": [{"apprise_conn_id": "apprise_alerts"}],
}


def document(**defaults: Any) -> dict[str, Any]:
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    exports = {name: shipped["exports"][name] for name in (OLERIA, "maxsight_audit_events")}
    plain = {k: v for k, v in shipped["defaults"].items() if k not in {"alerts", "deadline"}}
    return {"defaults": {**plain, **defaults}, "exports": exports}


# --- registry ------------------------------------------------------------------------------


def test_alerts_and_deadline_are_parsed_per_entry() -> None:
    registry = parse_registry(document(alerts=ALERTS, deadline="06:00"))
    entry = registry.get(OLERIA)
    assert entry.alerts == AlertChannels(
        (
            EmailChannel("smtp_alerts", ("security@example.com",)),
            AppriseChannel("apprise_alerts"),
        )
    )
    assert entry.deadline == parse_deadline("06:00")
    assert parse_registry(document()).get(OLERIA).alerts is None, "off unless configured"


@pytest.mark.parametrize(
    ("alerts", "field"),
    [
        ("yes", r"alerts"),
        ({"email": {"conn_id": "smtp", "to": ["not-an-address"]}}, r"alerts\.email\.to"),
        ({"email": {"to": ["a@example.com"], "cc": ["b@example.com"]}}, r"alerts\.email"),
        ({"webhooks": "apprise_default"}, r"alerts\.webhooks"),
        ({"webhooks": [{"url": "json://x"}]}, r"alerts\.webhooks\[0\]"),
        ({"webhooks": [{"apprise_conn_id": "a b"}]}, r"alerts\.webhooks\[0\]\.apprise_conn_id"),
        ({"pager": {}}, r"alerts: unknown field\(s\) pager"),
    ],
)
def test_a_bad_alerts_block_names_the_field(alerts: Any, field: str) -> None:
    with pytest.raises(RegistryError, match=rf"exports\.{OLERIA}\.{field}"):
        parse_registry(document(alerts=alerts))


@pytest.mark.parametrize("deadline", ["6", "25:00", "6:0", "0h", "tomorrow"])
def test_a_bad_deadline_names_the_field(deadline: str) -> None:
    with pytest.raises(RegistryError, match=rf"exports\.{OLERIA}\.deadline: "):
        parse_registry(document(alerts=ALERTS, deadline=deadline))


def test_the_exports_of_one_dag_agree_on_their_alerts() -> None:
    doc = document(alerts=ALERTS)
    doc["exports"]["oleria_other"] = {
        **doc["exports"][OLERIA],
        "dataset": "other",
        "alerts": {"webhooks": [{"apprise_conn_id": "apprise_alerts"}]},
    }
    with pytest.raises(RegistryError, match=r"oleria_other: shares dag .* alerts/deadline"):
        parse_registry(doc)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("interval_end", "timezone", "deadline", "due"),
    [
        ("2026-11-21T00:00+00:00", "UTC", "06:00", "2026-11-21T06:00+00:00"),
        ("2026-11-21T02:00+00:00", "UTC", "06:00", "2026-11-21T06:00+00:00"),
        # an interval that ends at or after the time: the next morning
        ("2026-11-21T07:00+01:00", "Europe/Berlin", "06:00", "2026-11-22T06:00+01:00"),
        ("2026-11-21T06:00+01:00", "Europe/Berlin", "06:00", "2026-11-22T06:00+01:00"),
        # daylight saving time starts on 2026-03-29 at 02:00 in Berlin: 06:00 is 04:00 UTC
        # that day, five hours after midnight, not six
        ("2026-03-29T00:00+01:00", "Europe/Berlin", "06:00", "2026-03-29T06:00+02:00"),
        # and ends on 2026-10-25 at 03:00: 06:00 is seven hours after midnight
        ("2026-10-25T00:00+02:00", "Europe/Berlin", "06:00", "2026-10-25T06:00+01:00"),
        ("2026-03-08T00:00-05:00", "America/New_York", "06:00", "2026-03-08T06:00-04:00"),
        # a delay is elapsed time after the interval ends, DST or not
        ("2026-03-29T00:00+01:00", "Europe/Berlin", "90m", "2026-03-29T01:30+01:00"),
        ("2026-11-21T00:00+00:00", "UTC", "6h", "2026-11-21T06:00+00:00"),
    ],
)
def test_the_deadline_is_a_local_time_after_the_interval_ends(
    interval_end: str, timezone: str, deadline: str, due: str
) -> None:
    parsed = parse_deadline(deadline)
    assert parsed is not None
    assert parsed.due(utc(interval_end), timezone) == utc(due)
    assert parsed.due(utc(interval_end), timezone).tzinfo == dt.UTC


def test_the_deadline_reference_survives_serialization_and_evaluates_from_the_run(
    airflow_db: Any,
) -> None:
    """Through Airflow's own encoder/decoder (what the DAG processor stores and the
    scheduler reads back, finding the class through the package's plugin), then
    evaluated against a real DagRun row."""
    from airflow.models import DagRun
    from airflow.serialization.decoders import decode_deadline_reference
    from airflow.serialization.encoders import encode_deadline_reference
    from airflow.utils.session import create_session

    from compliance_exports.deadlines import LandedBy

    parsed = parse_deadline("06:00")
    assert parsed is not None
    reference = LandedBy(deadline=parsed.to_json(), timezone="Europe/Berlin")
    stored = json.loads(json.dumps(encode_deadline_reference(reference)))
    assert stored["__class_path"] == "compliance_exports.deadlines.LandedBy"
    decoded = decode_deadline_reference(stored)
    assert decoded.inner_ref == reference

    start, end = utc("2026-03-28T00:00+01:00"), utc("2026-03-29T00:00+01:00")
    with create_session() as session:
        run = DagRun(
            dag_id="deadline_probe", run_id="scheduled__dst", logical_date=start,
            data_interval=(start, end), run_type="scheduled", state="queued",
        )  # fmt: skip
        session.add(run)
        session.flush()
        due = decoded.evaluate_with(
            session=session, interval=dt.timedelta(0), dag_id="deadline_probe", run_id=run.run_id
        )
        missing = decoded.evaluate_with(
            session=session, interval=dt.timedelta(0), dag_id="deadline_probe", run_id="nope"
        )
        session.rollback()
    assert due == utc("2026-03-29T06:00+02:00")
    assert missing is None


# --- the DAG -------------------------------------------------------------------------------


def test_the_dag_gets_callbacks_and_a_serializable_deadline_alert() -> None:
    from airflow.sdk.definitions.deadline import AsyncCallback
    from airflow.serialization.serialized_objects import DagSerialization

    from compliance_exports.alerts import record_task_error
    from compliance_exports.dag_factory import build_dags
    from compliance_exports.deadlines import LandedBy

    registry = parse_registry(document(alerts=ALERTS, deadline="06:00"))
    dag = build_dags(registry)["oleria_exports"]
    assert isinstance(dag.on_failure_callback, RunAlerts)
    assert dag.on_failure_callback.failure is True
    assert isinstance(dag.on_success_callback, RunAlerts)
    assert dag.on_success_callback.failure is False
    for task in dag.tasks:  # a mapped task keeps the callable, the others a list of one
        assert task.on_failure_callback in (record_task_error, [record_task_error]), task
    (alert,) = dag.deadline
    assert alert.reference == LandedBy(deadline=parse_deadline("06:00").to_json(), timezone="UTC")
    assert alert.interval == dt.timedelta(0)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "compliance_exports.notifiers.DeadlineMissedNotifier"
    kwargs = alert.callback.kwargs
    assert json.loads(json.dumps(kwargs)) == kwargs, "JSON only: it travels to the triggerer"
    serialized = DagSerialization.to_dict(dag)
    assert "deadline" in json.dumps(serialized)
    # a DAG without alerts has none of this
    plain = build_dags(parse_registry(document()))["oleria_exports"]
    assert (plain.on_failure_callback, plain.on_success_callback, plain.deadline) == (
        None,
        None,
        None,
    )


def test_a_deadline_without_alerts_is_refused() -> None:
    from compliance_exports.dag_factory import build_dags

    with pytest.raises(ValueError, match=r"deadline: needs alerts"):
        build_dags(parse_registry(document(deadline="06:00")))


# --- delivery ------------------------------------------------------------------------------


async def test_a_missed_deadline_alerts_every_channel_from_the_triggerer(
    inbox: tuple[MailReceiver, WebhookReceiver],
) -> None:
    from airflow.models.callback import CallbackState
    from airflow.triggers.callback import CallbackTrigger

    from compliance_exports.dag_factory import build_dags

    mail, hooks = inbox
    registry = parse_registry(document(alerts=ALERTS, deadline="06:00"))
    (alert,) = build_dags(registry)["oleria_exports"].deadline
    context = {  # what Deadline.handle_miss attaches (a DAGRunResponse dumped as JSON)
        "dag_run": {
            "dag_id": "oleria_exports",
            "dag_run_id": "scheduled__2026-03-11T00:00:00+00:00",
            "data_interval_start": "2026-03-10T00:00:00Z",
            "data_interval_end": "2026-03-11T00:00:00Z",
            "state": "running",
        },
        "deadline": {"id": "d-1", "deadline_time": "2026-03-11T06:00:00Z"},
    }
    trigger = CallbackTrigger(alert.callback.path, {**alert.callback.kwargs, "context": context})

    events = [event.payload async for event in trigger.run()]

    assert [e["state"] for e in events] == [CallbackState.RUNNING, CallbackState.SUCCESS], events
    (message,) = mail.messages()
    (call,) = hooks.calls()
    assert message["Subject"] == "[compliance-exports] oleria_exports is late (06:00)"
    assert call["json"]["title"] == message["Subject"]
    for text in (message.get_body(preferencelist=("html",)).get_content(), call["json"]["message"]):
        assert "scheduled__2026-03-11T00:00:00+00:00" in text
        assert "2026-03-11T06:00:00Z" in text


class GivenRun(RunFacts):
    """A run's task states and XComs as given (the callbacks' reads, without a database)."""

    def __init__(self, states: dict[tuple[str, int], str], xcoms: dict[Any, Any]) -> None:
        super().__init__("oleria_exports", "scheduled__2026-03-11", list({t for t, _ in states}))
        self.states, self.xcoms = states, xcoms

    def load(self) -> RunFacts:
        return self

    def xcom(self, task_id: str, map_index: int, key: str = "return_value") -> Any:
        return self.xcoms.get((task_id, map_index, key))


def test_warnings_of_a_run_are_batched_into_one_message(
    inbox: tuple[MailReceiver, WebhookReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    mail, hooks = inbox
    land, plan = f"{OLERIA}.land", f"{OLERIA}.plan"
    facts = GivenRun(
        {(plan, -1): "success", (land, 0): "success", (land, 1): "success"},
        {
            (plan, -1, "return_value"): [{"day": "2026-03-09"}, {"day": "2026-03-10"}],
            (land, 0, "return_value"): {"rows": 0, "warnings": ["empty: no rows"]},
            (land, 1, "return_value"): {"rows": 9, "warnings": ["row_count: 9 vs ~100", "x"]},
        },
    )
    monkeypatch.setattr("compliance_exports.alerts.RunFacts.load", lambda self: facts)
    channels = parse_registry(document(alerts=ALERTS)).get(OLERIA).alerts
    assert channels is not None
    callback = RunAlerts(channels, failure=False)

    callback({"dag": _Dag(), "run_id": facts.run_id})

    (message,) = mail.messages()
    (call,) = hooks.calls()
    assert call["json"]["type"] == "warning"
    assert "3 warning(s)" in message["Subject"]
    for text in (message.get_body(preferencelist=("html",)).get_content(), call["json"]["message"]):
        assert f"{OLERIA} dt=2026-03-09: empty: no rows" in text
        assert f"{OLERIA} dt=2026-03-10: row_count: 9 vs ~100" in text


def test_a_successful_run_without_warnings_sends_nothing(
    inbox: tuple[MailReceiver, WebhookReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    mail, hooks = inbox
    facts = GivenRun({(f"{OLERIA}.land", 0): "success"}, {})
    monkeypatch.setattr("compliance_exports.alerts.RunFacts.load", lambda self: facts)
    channels = AlertChannels((AppriseChannel("apprise_alerts"),))

    RunAlerts(channels, failure=False)({"dag": _Dag(), "run_id": facts.run_id})

    assert (mail.messages(), hooks.calls()) == ([], [])


class _Dag:
    dag_id = "oleria_exports"
    task_ids = [f"{OLERIA}.plan", f"{OLERIA}.land"]


def test_receivers_write_where_the_stack_says(tmp_path: Path) -> None:
    with MailReceiver(tmp_path / "mail") as mail, WebhookReceiver(tmp_path / "hooks") as hooks:
        assert mail.connection()["port"] == mail.port
        assert hooks.connection()["extra"]["config"]["path"].startswith("json://127.0.0.1:")
    assert (tmp_path / "mail").is_dir()
    assert (tmp_path / "hooks").is_dir()


def test_the_local_services_receive_alerts_where_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make up`` / ``make run``: the services pre-wire smtp_alerts and apprise_alerts (the
    shipped registry's channels) to receivers writing under the state dir."""
    from compliance_exports.alerts import AlertMessage
    from compliance_exports.registry import load_registry
    from include.localstack.services import LocalServices

    with LocalServices(alerts_dir=tmp_path) as services:
        for name, value in services.connection_env().items():
            monkeypatch.setenv(name, value)
        described = services.describe()["alerts"]
        channels = load_registry().get(OLERIA).alerts
        assert channels is not None
        message = AlertMessage("[compliance-exports] test", ("hello",), "warning")
        assert channels.send(message, {}) == []
    assert described["mail_dir"] == str(tmp_path / "mail")
    assert described["webhooks_dir"] == str(tmp_path / "webhooks")
    (mail,) = (tmp_path / "mail").glob("*.eml")
    assert "Subject: [compliance-exports] test" in mail.read_text()
    (call,) = (tmp_path / "webhooks").glob("*.json")
    assert json.loads(call.read_text())["json"]["message"] == "hello"


def test_any_providers_notifier_plugs_in_by_class_path(
    inbox: tuple[MailReceiver, WebhookReceiver],
) -> None:
    """``alerts.notifiers``: a notifier class, its kwargs, and which keyword arguments take
    the message; here the Apprise provider's class itself, as a user would name Slack's."""
    from compliance_exports.alerts import AlertMessage, NotifierChannel

    _, hooks = inbox
    alerts = {
        "notifiers": [
            {
                "class": "airflow.providers.apprise.notifications.apprise.AppriseNotifier",
                "kwargs": {"apprise_conn_id": "apprise_alerts"},
                "body": "body",
                "title": "title",
            }
        ]
    }
    channels = parse_registry(document(alerts=alerts)).get(OLERIA).alerts
    assert channels is not None
    (channel,) = channels.channels
    assert isinstance(channel, NotifierChannel)
    assert AlertChannels.from_json(channels.to_json()) == channels, "JSON for the triggerer"

    errors = channels.send(AlertMessage("plugged in", ("a line",)), {})

    assert errors == []
    ((call),) = hooks.calls()
    assert (call["json"]["title"], call["json"]["message"]) == ("plugged in", "a line")


@pytest.mark.parametrize(
    ("notifier", "field"),
    [
        ({"kwargs": {}}, r"notifiers\[0\]"),
        ({"class": "not a path"}, r"notifiers\[0\]\.class"),
        ({"class": "a.B", "body": "two words"}, r"notifiers\[0\]\.body"),
        ({"class": "a.B", "kwargs": {"x": {1, 2}}}, r"notifiers\[0\]\.kwargs"),
    ],
)
def test_a_bad_notifier_names_the_field(notifier: dict[str, Any], field: str) -> None:
    with pytest.raises(RegistryError, match=rf"exports\.{OLERIA}\.alerts\.{field}"):
        parse_registry(document(alerts={"notifiers": [notifier]}))
