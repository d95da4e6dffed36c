"""End-to-end helpers: which DAGs the tests cover, the stack as the tests use it (REST, S3,
the airflow CLI), and the lake checks every test shares."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compliance_exports.landing.layout import Partition
from compliance_exports.registry import ExportEntry, ExportKind, load_registry
from include.localstack.client import StackClient
from include.simulators.clock import days_ago
from tests.lake_checks import check_published

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DEFAULT_DAGS = ("oleria_exports",)


# --- what the tests cover ----------------------------------------------------------------


@dataclass(frozen=True)
class DagCase:
    """A registry DAG and its exports, split by kind."""

    dag_id: str
    entries: tuple[ExportEntry, ...]

    @property
    def windowed(self) -> list[ExportEntry]:
        return [e for e in self.entries if e.kind is ExportKind.WINDOWED]

    @property
    def snapshots(self) -> list[ExportEntry]:
        return [e for e in self.entries if e.kind is ExportKind.SNAPSHOT]

    def __str__(self) -> str:
        return self.dag_id


def registry_dags() -> dict[str, tuple[ExportEntry, ...]]:
    return {dag_id: tuple(entries) for dag_id, entries in load_registry().by_dag().items()}


def selected_cases() -> list[DagCase]:
    dags = registry_dags()
    wanted = os.environ.get("CE_E2E_DAGS", ",".join(DEFAULT_DAGS)).strip()
    ids = list(dags) if wanted == "all" else [d.strip() for d in wanted.split(",") if d.strip()]
    unknown = sorted(set(ids) - set(dags))
    if unknown:
        raise pytest.UsageError(f"CE_E2E_DAGS names unknown DAGs {unknown}; known: {list(dags)}")
    return [DagCase(dag_id, dags[dag_id]) for dag_id in ids]


def data_day(days_before: int) -> dt.date:
    """A past day inside the simulators' generated history (it ends at the coming
    midnight of SIM_TODAY), so a windowed export finds rows and "same rows" compares
    real content."""
    return days_ago(days_before)


# --- the stack ---------------------------------------------------------------------------


@dataclass
class E2EStack:
    """The session's local stack as the tests use it: REST, S3, the airflow CLI."""

    state_dir: Path
    info: dict[str, Any]
    command_env: dict[str, str]  # what `python -m include.localstack ...` ran with
    client: StackClient

    @property
    def airflow_env(self) -> dict[str, str]:
        """A clean environment plus the stack's ``env`` (what `source stack.env` gives)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "CE_"))}
        base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
        return {**base, **self.info["env"]}

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``airflow <args>`` against the stack (not checked: callers assert)."""
        return subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.airflow_env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # --- S3 ----------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        return str(self.info["s3"]["bucket"])

    def s3(self) -> Any:
        import boto3

        s3 = self.info["s3"]
        return boto3.client(
            "s3",
            endpoint_url=s3["endpoint_url"],
            aws_access_key_id=s3["access_key"],
            aws_secret_access_key=s3["secret_key"],
            region_name="us-east-1",
        )

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def partition(self, entry: ExportEntry, day: dt.date) -> Partition:
        return entry.partition(day)

    def partition_keys(self, entry: ExportEntry, day: dt.date) -> list[str]:
        """Every object of the export for ``day``: raw, curated and staging."""
        part = self.partition(entry, day)
        staging = part.staging_prefix("token").removesuffix("token/")  # every run's staging
        prefixes = [part.raw_prefix, part.curated_prefix, staging]
        return [key for prefix in prefixes for key in self.keys(prefix)]

    def manifest(self, entry: ExportEntry, day: dt.date) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.read(self.partition(entry, day).manifest_key))
        return data

    def check_partition(self, entry: ExportEntry, day: dt.date) -> tuple[dict[str, Any], Any]:
        """The live version of ``entry``'s ``day`` (``tests.lake_checks``) and its table."""
        return check_published(self.keys, self.read, self.partition(entry, day))


def rows_of(table: Any) -> list[str]:
    """A table's rows as sorted JSON lines (order-free content comparison)."""
    if table is None:
        return []
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in table.to_pylist())


def days(first: dt.date, last: dt.date) -> Sequence[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# --- the browser (Debian's Chromium through Playwright, no `playwright install`) ----------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT_MS = 90_000


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium (close it when done)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def log_in(page: Any, stack: E2EStack, path: str = "/") -> None:
    """Open ``path`` on the stack's UI through its login form, as the stack's admin."""
    login = stack.info["login"]
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(f"{stack.client.api_url}{path}")
    page.wait_for_url("**/auth/login**")
    page.get_by_role("textbox", name="Username").fill(login["username"])
    page.get_by_role("textbox", name="Password").fill(login["password"])
    page.get_by_role("button", name="Sign in").click()
    target = f"{stack.client.api_url}{path}"
    page.wait_for_url(lambda url: url.startswith(target) and "/auth/login" not in url)
