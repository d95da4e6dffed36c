"""The embedded services: the four vendor simulators, a local S3 HTTP API (moto) and,
given a directory, the alert receivers (an SMTP server writing ``mail/*.eml`` and a
webhook receiver writing ``webhooks/*.json``, include/localstack/receivers.py).

``LocalServices`` starts them in this process (threads on 127.0.0.1), creates the lake
bucket, and describes the Airflow connections that point the pipeline at them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.localstack.receivers import MailReceiver, WebhookReceiver
from include.simulators import VENDORS, RunningSimulator, start_simulator

LAKE_BUCKET = "compliance-lake"
LAKE_CONN_ID = "aws_lake"
S3_ACCESS_KEY = "local-lake-access-key"
S3_SECRET_KEY = "local-lake-secret-key"  # noqa: S105 - a throwaway key for the local moto server
#: the connections the registry's ``alerts`` name (include/registry/exports.yaml)
SMTP_ALERTS_CONN_ID = "smtp_alerts"
APPRISE_ALERTS_CONN_ID = "apprise_alerts"


@dataclass
class ServicePorts:
    """Fixed ports of the local stack (0 = any free port)."""

    s3: int = 0
    simulator_base: int = 0  # vendor i gets simulator_base + i when set

    def simulator(self, index: int) -> int:
        return self.simulator_base + index if self.simulator_base else 0


def demo_settings(today: dt.date) -> dict[str, dict[str, Any]]:
    """Simulator settings of the local stack: data up to ``today``, so nightly runs find some.

    Maxsight gets ~800 audit events a day over the last 60 days plus a burst of 6,000 in
    one hour of yesterday (so yesterday's PDFs need more than one window); Oleria's
    generated timestamps end at the coming midnight (``SIM_TODAY``, include/simulators/clock.py).
    """
    start = today - dt.timedelta(days=60)
    yesterday = today - dt.timedelta(days=1)
    return {
        "oleria": {"rows": 20_000},
        "maxsight": {
            "events": 60 * 800,
            "store_start": f"{start.isoformat()}T00:00:00.000Z",
            "store_end": f"{today.isoformat()}T23:59:59.999Z",
            "burst_events": 6_000,
            "burst_start": f"{yesterday.isoformat()}T13:00:00.000Z",
            "burst_seconds": 3_600.0,
        },
    }


def simulators_today() -> dt.date:
    """The simulators' today: ``SIM_TODAY`` if the caller set it, else today's UTC date.

    Call before any simulator module is imported (it reads the setting once).
    """
    os.environ.setdefault("SIM_TODAY", dt.datetime.now(dt.UTC).date().isoformat())
    from include.simulators.clock import today

    return today()


@dataclass
class LocalServices:
    host: str = "127.0.0.1"
    ports: ServicePorts = field(default_factory=ServicePorts)
    seed: int = 20261121
    simulator_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the simulators' profile (include.simulators.PROFILES): ``SIM_PROFILE`` or default
    profile: str = field(default_factory=lambda: os.environ.get("SIM_PROFILE") or "default")
    simulators: dict[str, RunningSimulator] = field(default_factory=dict)
    s3_endpoint: str = ""
    #: where received alerts are written (``mail/``, ``webhooks/``); None = no receivers
    alerts_dir: Path | None = None
    mail: MailReceiver | None = None
    webhooks: WebhookReceiver | None = None
    _moto: Any = None

    def start(self) -> LocalServices:
        try:
            self._start_s3()
            if self.alerts_dir is not None:
                alerts = Path(self.alerts_dir)
                self.mail = MailReceiver(alerts / "mail", self.host).start()
                self.webhooks = WebhookReceiver(alerts / "webhooks", self.host).start()
            for index, vendor in enumerate(VENDORS):
                self.simulators[vendor] = start_simulator(
                    vendor,
                    host=self.host,
                    port=self.ports.simulator(index),
                    seed=self.seed,
                    profile=self.profile,
                    **self.simulator_settings.get(vendor, {}),
                )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_s3(self) -> None:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
        from include.simulators.base import free_port

        port = self.ports.s3 or free_port(self.host)
        self._moto = ThreadedMotoServer(ip_address=self.host, port=port, verbose=False)
        self._moto.start()
        self.s3_endpoint = f"http://{self.host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
        ).create_bucket(Bucket=LAKE_BUCKET)

    def stop(self) -> None:
        for sim in self.simulators.values():
            sim.stop()
        self.simulators.clear()
        for receiver in (self.mail, self.webhooks):
            if receiver is not None:
                receiver.stop()
        self.mail = self.webhooks = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def s3_connection(self) -> dict[str, Any]:
        return {
            "conn_type": "aws",
            "login": S3_ACCESS_KEY,
            "password": S3_SECRET_KEY,
            "extra": {"endpoint_url": self.s3_endpoint, "region_name": "us-east-1"},
        }

    def connections(self) -> dict[str, dict[str, Any]]:
        """Airflow connection id -> connection (JSON form)."""
        conns = {f"{v}_default": sim.connection() for v, sim in self.simulators.items()}
        conns[LAKE_CONN_ID] = self.s3_connection()
        if self.mail is not None and self.webhooks is not None:
            conns[SMTP_ALERTS_CONN_ID] = self.mail.connection()
            conns[APPRISE_ALERTS_CONN_ID] = self.webhooks.connection()
        return conns

    def connection_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables for every connection."""
        return {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)
            for conn_id, conn in self.connections().items()
        }

    def describe(self) -> dict[str, Any]:
        described = self._describe()
        if self.mail is not None and self.webhooks is not None:
            described["alerts"] = {
                "mail_dir": str(self.mail.directory),
                "smtp": f"{self.mail.host}:{self.mail.port}",
                "smtp_conn_id": SMTP_ALERTS_CONN_ID,
                "webhooks_dir": str(self.webhooks.directory),
                "webhook_url": self.webhooks.apprise_url,
                "apprise_conn_id": APPRISE_ALERTS_CONN_ID,
            }
        return described

    def _describe(self) -> dict[str, Any]:
        return {
            "simulator_profile": self.profile,
            "simulators": {
                vendor: {
                    "base_url": sim.base_url,
                    "credentials": sim.credentials,
                    "extra": sim.extra,
                    "admin": f"{sim.base_url}/_sim",
                }
                for vendor, sim in self.simulators.items()
            },
            "s3": {
                "endpoint_url": self.s3_endpoint,
                "bucket": LAKE_BUCKET,
                "access_key": S3_ACCESS_KEY,
                "secret_key": S3_SECRET_KEY,
                "conn_id": LAKE_CONN_ID,
            },
        }
