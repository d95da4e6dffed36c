"""End-to-end fixtures: one `make up` stack (the session ``local_stack``) for every test here.

The tests run real parts only: ``airflow standalone`` (api-server, scheduler,
dag-processor, triggerer, LocalExecutor), the simulators over HTTP, moto's S3 over HTTP,
Debian's Chromium. Which DAGs they cover is ``CE_E2E_DAGS`` (comma-separated DAG ids,
default ``oleria_exports``; ``all`` = every DAG of the registry): one vendor keeps the
suite within a few minutes on a 2-core machine.

The test that stops the stack (marker ``stack_down``) runs after every other test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from include.localstack.client import StackClient
from tests.e2e.helpers import ARTIFACTS, E2EStack, selected_cases


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack_down: stops the session's local stack; runs last")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests that stop the stack after the other e2e tests (stable order).

    Only the e2e block is reordered, so the stack is stopped before the rest of the
    suite runs instead of idling (and taking CPU) until the very end.
    """
    here = Path(__file__).parent
    e2e = [i for i, item in enumerate(items) if here in Path(str(item.path)).parents]
    if not e2e:
        return
    block = items[e2e[0] : e2e[-1] + 1]
    block.sort(key=lambda item: item.get_closest_marker("stack_down") is not None)
    items[e2e[0] : e2e[-1] + 1] = block


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> E2EStack:
    """The session's local stack: every component healthy, the DAGs under test parsed.

    ``CE_E2E_STACK_DIR=<state dir>`` runs the tests against a stack that is already up
    (``make up``) instead of starting one; the test that stops the stack is then skipped.
    """
    existing = os.environ.get("CE_E2E_STACK_DIR")
    if existing:
        state_dir = Path(existing).resolve()
        info = json.loads((state_dir / "stack.json").read_text())
        command_env = {**os.environ, "CE_STATE_DIR": str(state_dir)}
        command_env["CE_API_PORT"] = str(urlsplit(info["api_url"]).port)
    else:
        local_stack: Any = request.getfixturevalue("local_stack")
        state_dir, info, command_env = local_stack.state_dir, local_stack.info, local_stack.env
    client = StackClient.from_stack(info)
    client.wait_for_healthy(timeout=180)
    # Only the DAGs under test: test_local_stack checks every DAG and the import errors.
    client.wait_for_dags(
        [case.dag_id for case in selected_cases()], timeout=300, import_errors_fail=False
    )
    return E2EStack(state_dir=state_dir, info=info, command_env=command_env, client=client)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
