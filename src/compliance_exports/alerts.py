"""Alerts that reach a person: the registry's ``alerts`` and ``deadline`` per DAG.

Messages go out through Airflow notifiers of the maintained providers: e-mail through
``SmtpNotifier`` (apache-airflow-providers-smtp, an SMTP connection) and chat or webhooks
through ``AppriseNotifier`` (apache-airflow-providers-apprise, one Apprise connection per
channel). A channel is anything with ``notifier(message) -> BaseNotifier``: another
provider's notifier plugs in as one more :class:`AlertChannel`.

* :class:`RunAlerts` is the DAG's ``on_failure_callback`` / ``on_success_callback``: one
  message per failed export of the run (the task group id is the export's name), naming
  the days, the error and a link to each failed task's log; the landing warnings of the
  run batched into one message.
* :func:`deadline_alert` is the DAG's ``deadline``: a ``DeadlineAlert`` whose callback is
  an ``AsyncCallback`` of ``notifiers.DeadlineMissedNotifier`` (JSON-only kwargs: it runs in
  the triggerer), due at a local time the scheduler computes from the run's data interval
  (``deadlines.LandedBy``, registered through the package's Airflow plugin).

Registry shape (``defaults:`` and/or per entry; the entries of one DAG must agree)::

    alerts:
      email: {conn_id: smtp_alerts, to: [sec@example.com], from_email: ce@example.com}
      webhooks: [{apprise_conn_id: apprise_alerts}]
    deadline: "06:00"     # landed by 06:00 (registry timezone) after the interval ends

No Airflow import at module level (the registry validates with this module); providers
are imported when a message is sent.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier
    from airflow.sdk.definitions.deadline import DeadlineAlert

    from compliance_exports.registry import ExportEntry

log = logging.getLogger(__name__)

ERROR_XCOM_KEY = "alert_error"  # what a failed task's last try raised (record_task_error)
_MAX_ERROR = 1500
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^(\d+)\s*(m|h)$")


class AlertConfigError(ValueError):
    """A bad ``alerts`` / ``deadline`` block; the message starts with the field's path."""


# --- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertMessage:
    """One message to a person: a subject line and plain-text lines."""

    title: str
    lines: tuple[str, ...]
    level: str = "failure"  # failure | warning | info

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def html(self) -> str:
        body = "<br>\n".join(_linkify(html.escape(line)) for line in self.lines)
        return f"<p>{body}</p>"


def _linkify(line: str) -> str:
    return re.sub(r"(https?://\S+)", r'<a href="\1">\1</a>', line)


# --- channels ------------------------------------------------------------------------------


class AlertChannel(Protocol):
    """Where messages go: builds one provider notifier per message."""

    def notifier(self, message: AlertMessage) -> BaseNotifier: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EmailChannel:
    """E-mail through the SMTP provider's ``SmtpNotifier`` (connection ``conn_id``)."""

    conn_id: str
    to: tuple[str, ...]
    from_email: str | None = None

    def notifier(self, message: AlertMessage) -> BaseNotifier:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=list(self.to),
            from_email=self.from_email,
            subject=message.title,
            html_content=message.html,
            smtp_conn_id=self.conn_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "email": {"conn_id": self.conn_id, "to": list(self.to), "from_email": self.from_email}
        }


@dataclass(frozen=True)
class AppriseChannel:
    """Chat or a webhook through ``AppriseNotifier``: the connection holds the Apprise URL
    (Slack, Teams, ``json://host/path``, ``mailto://``...), so no secret is in the registry."""

    apprise_conn_id: str
    tag: str = "all"

    def notifier(self, message: AlertMessage) -> BaseNotifier:
        from airflow.providers.apprise.notifications.apprise import AppriseNotifier
        from apprise import NotifyType

        kind = {"failure": NotifyType.FAILURE, "warning": NotifyType.WARNING}
        return AppriseNotifier(
            body=message.text,
            title=message.title,
            notify_type=kind.get(message.level, NotifyType.INFO),
            tag=self.tag,
            apprise_conn_id=self.apprise_conn_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {"webhook": {"apprise_conn_id": self.apprise_conn_id, "tag": self.tag}}


@dataclass(frozen=True)
class NotifierChannel:
    """Any provider's notifier, by class path: built with the registry's ``kwargs`` plus the
    message as its ``body`` (and ``title``, if given) keyword arguments, e.g. the Slack
    provider's ``SlackWebhookNotifier`` with ``body: text``."""

    notifier_class: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    body: str = "body"
    title: str | None = None

    def notifier(self, message: AlertMessage) -> BaseNotifier:
        from airflow.sdk.module_loading import import_string

        fields = {self.body: message.text, **({self.title: message.title} if self.title else {})}
        notifier: BaseNotifier = import_string(self.notifier_class)(**dict(self.kwargs), **fields)
        return notifier

    def to_json(self) -> dict[str, Any]:
        spec = {"class": self.notifier_class, "kwargs": dict(self.kwargs), "body": self.body}
        return {"notifier": {**spec, "title": self.title}}


@dataclass(frozen=True)
class AlertChannels:
    """The channels of one DAG (the registry's ``alerts``); empty = alerts off."""

    channels: tuple[AlertChannel, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.channels)

    def to_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.channels]

    @classmethod
    def from_json(cls, data: Sequence[Mapping[str, Any]]) -> AlertChannels:
        channels: list[AlertChannel] = []
        for item in data:
            if "email" in item:
                mail = item["email"]
                channels.append(
                    EmailChannel(mail["conn_id"], tuple(mail["to"]), mail["from_email"])
                )
            elif "webhook" in item:
                hook = item["webhook"]
                channels.append(AppriseChannel(hook["apprise_conn_id"], hook.get("tag", "all")))
            else:
                spec = item["notifier"]
                kwargs = tuple(sorted(spec["kwargs"].items()))
                channels.append(NotifierChannel(spec["class"], kwargs, spec["body"], spec["title"]))
        return cls(tuple(channels))

    def send(self, message: AlertMessage, context: Mapping[str, Any]) -> list[str]:
        """Send ``message`` on every channel; one channel's failure does not stop the
        others (each is logged). Returns the errors."""
        errors = []
        for channel in self.channels:
            try:
                # notify(), not __call__: the message is final text, never a Jinja template
                channel.notifier(message).notify(_plain(context))  # type: ignore[arg-type]
            except Exception as exc:
                log.exception("alert channel %s failed", channel)
                errors.append(f"{channel}: {exc}")
        return errors

    async def asend(self, message: AlertMessage, context: Mapping[str, Any]) -> list[str]:
        errors = []
        for channel in self.channels:
            try:
                await channel.notifier(message).async_notify(_plain(context))  # type: ignore[arg-type]
            except Exception as exc:
                log.exception("alert channel %s failed", channel)
                errors.append(f"{channel}: {exc}")
        return errors


def _plain(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context a channel's notifier gets: without the DAG (a provider that renders a
    default, e.g. the connection's ``from_email``, then uses a plain Jinja environment: the
    DAG of a callback may be a SerializedDAG, which has none)."""
    return {k: v for k, v in context.items() if k != "dag"}


def parse_alerts(raw: Any, where: str = "alerts") -> AlertChannels:
    """The registry's ``alerts`` block (``{}`` or absent = off)."""
    if raw is None or raw == {}:
        return AlertChannels()
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{where}: must be a mapping with email and/or webhooks")
    unknown = sorted(set(raw) - {"email", "webhooks", "notifiers"})
    if unknown:
        raise AlertConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    channels: list[AlertChannel] = []
    if raw.get("email") is not None:
        channels.append(_email(raw["email"], f"{where}.email"))
    hooks = raw.get("webhooks") or []
    if not isinstance(hooks, list):
        raise AlertConfigError(f"{where}.webhooks: must be a list of {{apprise_conn_id: ...}}")
    for i, hook in enumerate(hooks):
        channels.append(_webhook(hook, f"{where}.webhooks[{i}]"))
    others = raw.get("notifiers") or []
    if not isinstance(others, list):
        raise AlertConfigError(f"{where}.notifiers: must be a list of {{class: ..., kwargs: ...}}")
    for i, other in enumerate(others):
        channels.append(_notifier(other, f"{where}.notifiers[{i}]"))
    return AlertChannels(tuple(channels))


def _email(raw: Any, where: str) -> EmailChannel:
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{where}: must be {{conn_id: ..., to: [addresses]}}")
    unknown = sorted(set(raw) - {"conn_id", "to", "from_email"})
    if unknown:
        raise AlertConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    to = raw.get("to")
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not to or not all(_EMAIL.match(str(a)) for a in to):
        raise AlertConfigError(f"{where}.to: {raw.get('to')!r} is not a list of e-mail addresses")
    sender = raw.get("from_email")
    if sender is not None and not _EMAIL.match(str(sender)):
        raise AlertConfigError(f"{where}.from_email: {sender!r} is not an e-mail address")
    return EmailChannel(_conn_id(raw.get("conn_id", "smtp_default"), f"{where}.conn_id"),
                        tuple(str(a) for a in to), sender)  # fmt: skip


def _webhook(raw: Any, where: str) -> AppriseChannel:
    if not isinstance(raw, Mapping) or "apprise_conn_id" not in raw:
        raise AlertConfigError(f"{where}: must be {{apprise_conn_id: ..., tag: ...}}")
    unknown = sorted(set(raw) - {"apprise_conn_id", "tag"})
    if unknown:
        raise AlertConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    tag = raw.get("tag", "all")
    if not isinstance(tag, str) or not tag:
        raise AlertConfigError(f"{where}.tag: {tag!r} is not an Apprise tag")
    return AppriseChannel(_conn_id(raw["apprise_conn_id"], f"{where}.apprise_conn_id"), tag)


def _notifier(raw: Any, where: str) -> NotifierChannel:
    import json

    if not isinstance(raw, Mapping) or not isinstance(raw.get("class"), str):
        raise AlertConfigError(
            f"{where}: must be {{class: dotted.path, kwargs: {{...}}, body: ...}}"
        )
    unknown = sorted(set(raw) - {"class", "kwargs", "body", "title"})
    if unknown:
        raise AlertConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    if not re.match(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", raw["class"]):
        raise AlertConfigError(f"{where}.class: {raw['class']!r} is not a dotted class path")
    kwargs = raw.get("kwargs") or {}
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError):
        raise AlertConfigError(
            f"{where}.kwargs: must be JSON (it may travel to the triggerer)"
        ) from None
    if not isinstance(kwargs, Mapping):
        raise AlertConfigError(f"{where}.kwargs: must be a mapping")
    body, title = raw.get("body", "body"), raw.get("title")
    for name, value in (("body", body), ("title", title)):
        if value is not None and (not isinstance(value, str) or not value.isidentifier()):
            raise AlertConfigError(f"{where}.{name}: {value!r} is not a keyword argument name")
    return NotifierChannel(raw["class"], tuple(sorted(kwargs.items())), body, title)


def _conn_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.match(r"^[A-Za-z0-9_.\-]+$", value):
        raise AlertConfigError(f"{where}: {value!r} is not a connection id")
    return value


# --- what failed in a run ------------------------------------------------------------------


@dataclass(frozen=True)
class FailedTask:
    task_id: str
    map_index: int
    state: str
    day: str | None = None
    error: str | None = None

    @property
    def export(self) -> str:
        return self.task_id.split(".", 1)[0]


@dataclass
class RunFacts:
    """What the callbacks read of a run: task states and XComs (the Task SDK's API in the
    DAG processor; the metadata database under ``dag.test()``)."""

    dag_id: str
    run_id: str
    task_ids: Sequence[str]
    states: dict[tuple[str, int], str] = field(default_factory=dict)

    def load(self) -> RunFacts:
        self.states = _task_states(self.dag_id, self.run_id, self.task_ids)
        return self

    def xcom(self, task_id: str, map_index: int, key: str = "return_value") -> Any:
        return _xcom(self.dag_id, self.run_id, task_id, map_index, key)


def _sdk_comms() -> bool:
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _task_states(dag_id: str, run_id: str, task_ids: Sequence[str]) -> dict[tuple[str, int], str]:
    if _sdk_comms():
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        flat = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
        return {_split_key(k, task_ids): str(v) for k, v in flat.items()}
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in rows}


def _split_key(key: str, task_ids: Sequence[str]) -> tuple[str, int]:
    """The execution API names a mapped task instance ``<task_id>_<map_index>``."""
    if key in task_ids:
        return key, -1
    head, _, index = key.rpartition("_")
    return (head, int(index)) if head in task_ids and index.isdigit() else (key, -1)


def _xcom(dag_id: str, run_id: str, task_id: str, map_index: int, key: str) -> Any:
    if _sdk_comms():
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_one(
            key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index
        )
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)
            .first()
        )
        return XComModel.deserialize_value(row) if row is not None else None


def log_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The task instance's page (logs) in the Airflow 3 UI, as ``TaskInstance.log_url``."""
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}{mapped}"


# --- the callbacks -------------------------------------------------------------------------


def record_task_error(context: Mapping[str, Any]) -> None:
    """A task's ``on_failure_callback``: keep what its last try raised for the run's alert."""
    exc = context.get("exception")
    ti = context.get("ti") or context.get("task_instance")
    if exc is None or ti is None:
        return
    text = f"{type(exc).__name__}: {exc}"
    try:
        ti.xcom_push(key=ERROR_XCOM_KEY, value=text[-_MAX_ERROR:])
    except Exception:
        log.warning("could not record the error of %s for the alert", ti.task_id, exc_info=True)


@dataclass
class RunAlerts:
    """``on_failure_callback`` (``failure=True``) / ``on_success_callback`` of a DAG."""

    channels: AlertChannels
    failure: bool = True
    #: the DAG's exports (its task group ids)
    exports: tuple[str, ...] = ()

    def __call__(self, context: Mapping[str, Any]) -> None:
        dag = context["dag"]
        run_id = str(context.get("run_id") or context["dag_run"].run_id)
        if is_dry_run_context(context):  # the person who asked for it reads the plan's report
            log.info("run %s is a dry run: no alert", run_id)
            return
        facts = RunFacts(dag.dag_id, run_id, list(dag.task_ids)).load()
        base_url = _base_url()
        warnings = run_warnings(facts)
        messages = []
        if self.failure:
            failed = failed_tasks(facts, _interval_day(context))
            messages = failure_messages(dag.dag_id, run_id, failed, warnings, base_url)
        elif warnings:
            messages = [warning_message(dag.dag_id, run_id, warnings)]
        for message in messages:
            errors = self.channels.send(message, context)
            log.info("alert sent: %s%s", message.title, f" (errors: {errors})" if errors else "")


def is_dry_run_context(context: Mapping[str, Any]) -> bool:
    """Whether the run is the trigger form's dry run (its ``dry_run`` param or conf)."""
    from compliance_exports.runs import is_dry_run

    conf = getattr(context.get("dag_run"), "conf", None) or {}
    return is_dry_run(conf) or is_dry_run(context.get("params") or {})


def _base_url() -> str:
    from airflow.configuration import conf

    return str(conf.get("api", "base_url", fallback="http://localhost:8080/"))


def _interval_day(context: Mapping[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    start = getattr(dag_run, "data_interval_start", None)
    return start.date().isoformat() if isinstance(start, dt.datetime) else None


def failed_tasks(facts: RunFacts, default_day: str | None) -> list[FailedTask]:
    """The run's failed task instances (upstream_failed ones are consequences, not
    causes), each with its planned slice's day and its recorded error."""
    failed = []
    for (task_id, map_index), state in sorted(facts.states.items()):
        if state != "failed":
            continue
        day = _planned_day(facts, task_id, map_index) or default_day
        error = facts.xcom(task_id, map_index, ERROR_XCOM_KEY)
        failed.append(FailedTask(task_id, map_index, state, day, error))
    return failed


def _planned_day(facts: RunFacts, task_id: str, map_index: int) -> str | None:
    """Map index N of a task mapped over ``<export>.plan``'s slices is slice N's day."""
    if map_index < 0 or "." not in task_id:
        return None
    try:
        planned = facts.xcom(f"{task_id.split('.', 1)[0]}.plan", -1)
    except Exception:
        return None
    if isinstance(planned, list) and map_index < len(planned):
        item = planned[map_index]
        return str(item.get("day")) if isinstance(item, Mapping) else None
    return None


def run_warnings(facts: RunFacts) -> list[str]:
    """The ``warnings`` of every landing result of the run, as ``export dt=day: text``."""
    found: list[str] = []
    for (task_id, map_index), state in sorted(facts.states.items()):
        if not task_id.endswith(".land") or state != "success":
            continue
        try:
            result = facts.xcom(task_id, map_index)
        except Exception:
            log.warning("cannot read the result of %s[%s]", task_id, map_index, exc_info=True)
            continue
        if not isinstance(result, Mapping):
            continue
        notes = result.get("warnings") or []
        day = _planned_day(facts, task_id, map_index) or result.get("day") or "?"
        export = task_id.split(".", 1)[0]
        if isinstance(notes, list):
            found.extend(f"{export} dt={day}: {note}" for note in notes)
    return found


def failure_messages(
    dag_id: str, run_id: str, failed: Sequence[FailedTask], warnings: Sequence[str], base_url: str
) -> list[AlertMessage]:
    """One message per failed export of the run."""
    by_export: dict[str, list[FailedTask]] = {}
    for task in failed:
        by_export.setdefault(task.export, []).append(task)
    messages = []
    for export, tasks in by_export.items():
        days = sorted({t.day for t in tasks if t.day})
        lines = [
            f"Export {export} failed in DAG {dag_id}, run {run_id}.",
            f"Day(s): {', '.join(days) or 'unknown'}",
        ]
        for task in tasks:
            where = task.task_id + (f"[{task.map_index}]" if task.map_index >= 0 else "")
            lines.append(f"- {where} ({task.day or '?'}): {task.state}")
            if task.error:
                lines.append(f"  Error: {task.error}")
            url = log_url(base_url, dag_id, run_id, task.task_id, task.map_index)
            lines.append(f"  Log: {url}")
        mine = [w for w in warnings if w.startswith(f"{export} ")]
        if mine:
            lines += ["Warnings:", *(f"- {w}" for w in mine)]
        title = f"[compliance-exports] {export} failed ({', '.join(days) or run_id})"
        messages.append(AlertMessage(title, tuple(lines), "failure"))
    other = [w for w in warnings if w.split(" ", 1)[0] not in by_export]
    if other:
        messages.append(warning_message(dag_id, run_id, other))
    return messages


def warning_message(dag_id: str, run_id: str, warnings: Sequence[str]) -> AlertMessage:
    lines = [f"{len(warnings)} warning(s) in DAG {dag_id}, run {run_id}:"]
    lines += [f"- {w}" for w in warnings]
    return AlertMessage(f"[compliance-exports] {dag_id}: {len(warnings)} warning(s)",
                        tuple(lines), "warning")  # fmt: skip


def dag_callbacks(channels: AlertChannels, exports: Sequence[str]) -> dict[str, Any]:
    """The ``DAG(...)`` keyword arguments of the registry's alerts (``{}`` when off)."""
    if not channels:
        return {}
    return {
        "on_failure_callback": RunAlerts(channels, True, tuple(exports)),
        "on_success_callback": RunAlerts(channels, False, tuple(exports)),
    }


# --- deadlines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """``"HH:MM"``: landed by that time (registry timezone) on the day the interval ends
    (the next day if the interval ends at or after that time); ``"90m"`` / ``"6h"``: that
    long after the interval ends."""

    spec: str
    clock: dt.time | None = None
    after_end: dt.timedelta | None = None

    def due(self, interval_end: dt.datetime, timezone: str) -> dt.datetime:
        """When a run whose data interval ends at ``interval_end`` is late, as wall-clock
        time in ``timezone``: a day that changes to or from daylight saving time is 23 or
        25 hours long, and the deadline stays at its local time."""
        if self.after_end is not None:
            return interval_end + self.after_end
        assert self.clock is not None
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(timezone)
        end = interval_end.astimezone(zone)
        day = (
            end.date()
            if end.timetz().replace(tzinfo=None) < self.clock
            else end.date() + dt.timedelta(days=1)
        )
        return dt.datetime.combine(day, self.clock, tzinfo=zone).astimezone(dt.UTC)

    def to_json(self) -> dict[str, Any]:
        after = int(self.after_end.total_seconds()) if self.after_end is not None else None
        return {"spec": self.spec, "clock": self.clock.strftime("%H:%M") if self.clock else None,
                "after_end_seconds": after}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deadline:
        clock, after = data.get("clock"), data.get("after_end_seconds")
        return cls(
            str(data["spec"]),
            clock=dt.time.fromisoformat(clock) if clock else None,
            after_end=dt.timedelta(seconds=int(after)) if after is not None else None,
        )


def parse_deadline(raw: Any, where: str = "deadline") -> Deadline | None:
    if raw is None:
        return None
    text = str(raw).strip()
    clock = _CLOCK.match(text)
    if clock:
        return Deadline(text, clock=dt.time(int(clock.group(1)), int(clock.group(2))))
    duration = _DURATION.match(text)
    if duration and int(duration.group(1)) > 0:
        unit = "minutes" if duration.group(2) == "m" else "hours"
        return Deadline(text, after_end=dt.timedelta(**{unit: int(duration.group(1))}))
    raise AlertConfigError(
        f'{where}: {raw!r} is not a time of day like "06:00" or a delay like 90m / 6h'
    )


def deadline_message(dag_id: str, deadline: str, context: Mapping[str, Any]) -> AlertMessage:
    run = context.get("dag_run") or {}
    due = (context.get("deadline") or {}).get("deadline_time")
    run_id = run.get("dag_run_id") or run.get("run_id") or "?"
    lines = [
        f"DAG {dag_id} has not finished run {run_id} by its deadline ({deadline}, due {due}).",
        f"Data interval: {run.get('data_interval_start')} .. {run.get('data_interval_end')}",
        f"State: {run.get('state')}",
        log_url(_base_url(), dag_id, str(run_id), "", -1).rsplit("/tasks/", 1)[0],
    ]
    return AlertMessage(f"[compliance-exports] {dag_id} is late ({deadline})", tuple(lines),
                        "warning")  # fmt: skip


def deadline_alert(
    dag_id: str, channels: AlertChannels, deadline: Deadline, timezone: str
) -> DeadlineAlert:
    """The DAG's ``deadline``: due at :meth:`Deadline.due` of the run's data interval end
    (a :class:`~compliance_exports.deadlines.LandedBy` reference, evaluated by the
    scheduler when the run is created), the notifier run in the triggerer."""
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert

    from compliance_exports.deadlines import LandedBy

    return DeadlineAlert(
        reference=LandedBy(deadline=deadline.to_json(), timezone=timezone),
        interval=dt.timedelta(0),
        callback=AsyncCallback(
            "compliance_exports.notifiers.DeadlineMissedNotifier",
            kwargs={"channels": channels.to_json(), "deadline": deadline.spec, "dag_id": dag_id},
        ),
        name=f"{dag_id} landed by {deadline.spec}",
    )


# --- the DAG's keyword arguments -------------------------------------------------------------


def dag_alert_kwargs(dag_id: str, entries: Sequence[ExportEntry]) -> dict[str, Any]:
    """``DAG(...)`` keyword arguments of the registry's ``alerts`` and ``deadline`` (the
    entries of one DAG agree on both: registry._check_dags); ``{}`` when alerts are off."""
    first = entries[0]
    if first.deadline is not None and not first.alerts:
        raise ValueError(f"exports.{first.name}.deadline: needs alerts (nobody would hear of it)")
    if not first.alerts:
        return {}
    kwargs = dag_callbacks(first.alerts, [e.name for e in entries])
    if first.deadline is not None:
        kwargs["deadline"] = deadline_alert(dag_id, first.alerts, first.deadline, first.timezone)
    return kwargs


def task_alert_defaults(entries: Sequence[ExportEntry]) -> dict[str, Any]:
    """``default_args`` that keep a failed task's error for the run's alert."""
    return {"on_failure_callback": record_task_error} if entries[0].alerts else {}
