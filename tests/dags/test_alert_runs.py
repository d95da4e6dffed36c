"""Alerts that reach a person, through real Airflow: the real DAG file's DAG (dag.test())
for a registry with ``alerts`` on, a real SMTP server (aiosmtpd) and a real HTTP
receiver on loopback (include/localstack/receivers.py, as the local stack runs them).

A landing that fails on both days of a two-day run sends exactly ONE e-mail and ONE
webhook call for the export (not one per mapped task), naming the export, both days,
the error and a link to each failed task's log.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.registry import DEFAULT_REGISTRY, REGISTRY_ENV
from include.localstack.receivers import MailReceiver, WebhookReceiver
from include.simulators.clock import days_ago
from tests.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

OLERIA = "oleria_employee_events"
FIRST, SECOND = days_ago(4), days_ago(3)
ALERTS = {
    "email": {"conn_id": "smtp_alerts", "to": ["security@example.com"]},
    "webhooks": [{"apprise_conn_id": "apprise_alerts"}],
}


def registry_document(
    broken: bool = False, renamed: bool = False, **quality: str
) -> dict[str, Any]:
    shipped = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    defaults = {**shipped["defaults"], "retry_delay": "1s", "poll_interval": "1s", "retries": 2}
    defaults.update(verify=False, alerts=ALERTS)
    oleria = copy.deepcopy(shipped["exports"][OLERIA])
    if broken:  # the vendor's names no longer parse as the declared type: landing fails
        oleria["schema"]["name"] = "int64"
    if renamed:  # the vendor renamed fullName to name: a declared column missing, a new one
        del oleria["schema"]["name"]
        oleria["schema"]["fullName"] = "string"
    if quality:
        oleria["quality"] = quality
    return {"defaults": defaults, "exports": {OLERIA: oleria}}


def load_dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "exports.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    bag = DagBag(dag_folder=str(REPO / "dags" / "compliance_exports.py"))
    assert bag.import_errors == {}
    return bag.dags["oleria_exports"]


@dataclass
class Alerting:
    """One alert test's parts: the session receivers (emptied), the simulators, and a
    DAG of the real DAG file for a registry document, run with dag.test()."""

    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    mail: MailReceiver
    hooks: WebhookReceiver
    sim: dict[str, Any]
    run_for_day: Any

    def dag(self, document: dict[str, Any]) -> Any:
        return load_dag(self.tmp_path, self.monkeypatch, document)

    def run(
        self, document: dict[str, Any], day: dt.date, conf: dict[str, Any] | None = None
    ) -> Any:
        return self.run_for_day(self.dag(document), day, conf)

    def one_alert(self) -> tuple[Any, dict[str, Any], list[str]]:
        """The one e-mail, the one webhook call, and the text each carries."""
        (message,) = self.mail.messages()
        (call,) = self.hooks.calls()
        html = message.get_body(preferencelist=("html",)).get_content()
        return message, call, [html, call["json"]["message"]]

    def nothing_sent(self) -> bool:
        return self.mail.messages() == [] and self.hooks.calls() == []


@pytest.fixture
def alerting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: Path,
    s3: Any,
    sim: dict[str, Any],
    inbox: tuple[MailReceiver, WebhookReceiver],
    run_for_day: Any,
) -> Alerting:
    return Alerting(tmp_path, monkeypatch, *inbox, sim, run_for_day)


def test_a_failed_export_sends_one_email_and_one_webhook_call_naming_it(
    alerting: Alerting,
) -> None:
    dag = alerting.dag(registry_document(broken=True))
    dag_range = {"range_start": FIRST.isoformat(), "range_end": SECOND.isoformat()}

    dagrun = alerting.run_for_day(dag, SECOND, dag_range)

    failed = sorted(
        (ti.task_id, ti.map_index) for ti in dagrun.get_task_instances() if ti.state == "failed"
    )
    assert dagrun.state == "failed"
    assert failed == [(f"{OLERIA}.land", 0), (f"{OLERIA}.land", 1)], "two mapped tasks failed"
    message, call, texts = alerting.one_alert()
    assert message["To"] == "security@example.com"
    assert OLERIA in message["Subject"]
    webhook = call["json"]
    assert webhook["type"] == "failure"
    assert OLERIA in webhook["title"]
    for text in texts:
        assert f"Export {OLERIA} failed" in text
        assert f"{FIRST}, {SECOND}" in text, "both days named"
        assert "Error: BadRowError" in text, "the reason"
        assert "not a valid int64" in text, "the type that no longer parses"
        run = dagrun.run_id.replace("+", "%2B").replace(":", "%3A")
        for index in (0, 1):
            assert f"/dags/oleria_exports/runs/{run}/tasks/{OLERIA}.land/mapped/{index}" in text


def test_a_successful_run_without_warnings_sends_nothing(
    alerting: Alerting,
) -> None:
    dag = alerting.dag(registry_document())

    dagrun = alerting.run_for_day(dag, SECOND - dt.timedelta(days=3))

    assert dagrun.state == "success"
    assert alerting.nothing_sent()


def test_a_renamed_column_in_fail_mode_sends_one_alert_naming_the_check(
    alerting: Alerting,
) -> None:
    document = registry_document(renamed=True, missing_columns="fail")
    dag = alerting.dag(document)

    dagrun = alerting.run_for_day(dag, FIRST - dt.timedelta(days=1))

    assert dagrun.state == "failed"
    _, _, texts = alerting.one_alert()
    for text in texts:
        assert f"Export {OLERIA} failed" in text
        assert "quality gate failed" in text
        assert "missing_columns" in text
        assert "fullName" in text


def test_warnings_of_a_successful_run_arrive_as_one_message(
    alerting: Alerting,
) -> None:
    document = registry_document(renamed=True, missing_columns="warn", new_columns="warn")
    dag = alerting.dag(document)

    dagrun = alerting.run_for_day(dag, FIRST - dt.timedelta(days=2))

    assert dagrun.state == "success"
    message, call, texts = alerting.one_alert()
    assert call["json"]["type"] == "warning"
    assert "warning(s)" in message["Subject"]
    for text in texts:
        assert f"{OLERIA} dt={FIRST - dt.timedelta(days=2)}: missing_columns" in text
        assert "new_columns" in text


@pytest.mark.xfail(
    strict=True,
    reason="Airflow 3.3.2: dag.test() of a DAG with a deadline fails when the run succeeds "
    "(DagRun.update_state passes the serialized alert, a dict, to DeadlineAlertModel.get_by_id); "
    "why the shipped registry leaves deadline off. Strict: tells us when it is fixed.",
)
def test_dag_test_of_a_successful_run_with_a_deadline(
    alerting: Alerting,
) -> None:
    document = registry_document()
    document["defaults"]["deadline"] = "06:00"
    dag = alerting.dag(document)

    dagrun = alerting.run_for_day(dag, FIRST - dt.timedelta(days=5))

    assert dagrun.state == "success"


def test_an_empty_export_in_fail_mode_sends_one_alert_naming_the_check(
    alerting: Alerting,
) -> None:
    document = registry_document(empty="fail")
    (status,) = document["exports"][OLERIA]["oleria"]["filter_by"]
    status["values"] = ["no_such_status"]  # a filter nothing matches: an empty export
    dag = alerting.dag(document)
    day = FIRST - dt.timedelta(days=6)

    dagrun = alerting.run_for_day(dag, day)

    assert dagrun.state == "failed"
    _, _, texts = alerting.one_alert()
    for text in texts:
        assert f"Export {OLERIA} failed" in text
        assert f"quality gate failed for {OLERIA} dt={day}" in text
        assert "(empty)" in text


def test_a_row_count_far_off_the_trend_in_fail_mode_sends_one_alert_naming_it(
    alerting: Alerting,
) -> None:
    """Three days land with the usual filter (the trend has no history yet: skipped, no
    alert); the fourth day's export is narrowed to one status, far below their median.
    The simulator holds ~100 events a day for this (its default is ~1)."""
    oleria = alerting.sim["oleria"]
    with oleria.admin() as admin:
        rows = admin.get("/_sim/config").json()["rows"]
        admin.patch("/_sim/config", json={"rows": 73_000}).raise_for_status()
    try:
        first = FIRST - dt.timedelta(days=20)
        last = (first + dt.timedelta(days=2)).isoformat()
        document = registry_document(trend="fail")
        dag = alerting.dag(document)
        history = alerting.run_for_day(
            dag, first + dt.timedelta(days=2), {"range_start": str(first), "range_end": last}
        )
        assert history.state == "success"
        assert alerting.nothing_sent()

        (status,) = document["exports"][OLERIA]["oleria"]["filter_by"]
        status["values"] = ["suspended"]  # the vendor (or a filter) now returns a fraction
        document["exports"][OLERIA]["quality"]["trend_band"] = [0.75, 1.5]
        day = first + dt.timedelta(days=3)
        dagrun = alerting.run(document, day)
    finally:
        with oleria.admin() as admin:
            admin.patch("/_sim/config", json={"rows": rows}).raise_for_status()

    assert dagrun.state == "failed"
    _, _, texts = alerting.one_alert()
    for text in texts:
        assert f"Export {OLERIA} failed" in text
        assert f"quality gate failed for {OLERIA} dt={day}" in text
        assert "(trend)" in text
        assert "of 3 earlier partitions" in text


def test_a_failed_dry_run_alerts_nobody(
    alerting: Alerting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person checking credentials from the trigger form reads the plan's report; a
    refused secret fails the dry run, and the security team's channels stay quiet."""
    conn = {**alerting.sim["oleria"].connection(), "password": "wrong-secret-7d3a"}
    monkeypatch.setenv("AIRFLOW_CONN_OLERIA_DEFAULT", json.dumps(conn))
    dag = alerting.dag(registry_document())

    dagrun = alerting.run_for_day(dag, FIRST - dt.timedelta(days=7), {"dry_run": True})

    assert dagrun.state == "failed"
    assert alerting.nothing_sent()
