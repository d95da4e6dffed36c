"""VezaHook: status words (prefixed or not), the value envelope, google.rpc errors."""

from __future__ import annotations

import httpx
import pytest

from compliance_exports.core.errors import UnknownStatusError
from compliance_exports.core.states import ExportPhase
from compliance_exports.vendors.veza.hook import VezaHook

PHASES = [
    ("CREATED", ExportPhase.PENDING),
    ("PROCESSING", ExportPhase.RUNNING),
    ("FINISHED", ExportPhase.SUCCEEDED),
    ("FAILED", ExportPhase.FAILED),
    ("CANCELLED", ExportPhase.CANCELLED),
    ("EXPIRED", ExportPhase.EXPIRED),
]


@pytest.mark.parametrize(("word", "phase"), PHASES)
@pytest.mark.parametrize("prefix", ["", "EXPORT_STATUS_"])
def test_every_status_word(word: str, phase: ExportPhase, prefix: str) -> None:
    response = httpx.Response(200, json={"value": {"id": "e1", "status": prefix + word}})
    assert VezaHook().state_of("e1", response).phase is phase


@pytest.mark.parametrize("word", ["DONE", "EXPORT_STATUS_UNSPECIFIED", ""])
def test_unknown_status_is_an_error(word: str) -> None:
    with pytest.raises(UnknownStatusError):
        VezaHook().state_of("e1", httpx.Response(200, json={"value": {"status": word}}))


@pytest.mark.parametrize(
    "body",
    [{"value": {"id": "e1"}}, {"value": {"export_id": "e1"}}, {"id": "e1"}],
)
def test_job_id_in_any_tolerated_shape(body: dict[str, object]) -> None:
    assert VezaHook().job_id_of(httpx.Response(200, json=body)) == "e1"


def test_rpc_error_names_the_code() -> None:
    body = {"code": 9, "message": "export not finished", "details": []}
    assert VezaHook().parse_error(httpx.Response(400, json=body)) == (
        "FAILED_PRECONDITION: export not finished"
    )
