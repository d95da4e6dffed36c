"""``test_connection()`` of every vendor hook against its simulator over HTTP.

The UI's Test button and the trigger form's dry run call it. For each vendor: the right
credentials succeed; a wrong secret fails with the vendor's own message and never the
secret; an unreachable host fails saying so; and the probe starts no export (the
simulator's own state and request log say so).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from compliance_exports.core.hooks import ExportHook
from compliance_exports.vendors.maxsight.hook import MaxsightHook
from compliance_exports.vendors.oleria.hook import OleriaHook
from compliance_exports.vendors.sailpoint.hook import SailPointHook
from compliance_exports.vendors.veza.hook import VezaHook
from include.simulators import RunningSimulator
from include.simulators.base import free_port
from tests.conftest import set_connection

pytestmark = pytest.mark.integration

HOOKS: dict[str, type[ExportHook]] = {
    "oleria": OleriaHook,
    "veza": VezaHook,
    "sailpoint": SailPointHook,
    "maxsight": MaxsightHook,
}
VENDORS = sorted(HOOKS)
#: a wrong secret that a leak would show verbatim
WRONG_SECRET = "wr0ng-s3cret-do-not-leak-7f3a"
#: the vendor's own words for a wrong secret, as each simulator answers it
VENDOR_MESSAGES = {
    "oleria": "invalid_client: invalid client credentials",  # token endpoint {code, message}
    "veza": "UNAUTHENTICATED: invalid or missing API key",  # google.rpc.Status, code 16
    "sailpoint": "invalid_client: Bad credentials",  # OAuth2 {error, error_description}
    "maxsight": "unauthorized: Missing or invalid API key. (apikey)",  # {"errors": [...]}
}


def _define(conn_id: str, sim: RunningSimulator, **changes: Any) -> str:
    conn = sim.connection()
    extra = {**conn["extra"], **changes.pop("extra", {})}
    set_connection(conn_id, {**conn, **changes, "extra": extra})
    return conn_id


def _exports(sim: RunningSimulator) -> dict[str, Any]:
    with sim.admin() as admin:
        facts: dict[str, Any] = admin.get("/_sim/facts").json()
    return dict(facts.get("exports") or {})


def _requests(sim: RunningSimulator) -> list[dict[str, Any]]:
    with sim.admin() as admin:
        seen: list[dict[str, Any]] = admin.get("/_sim/requests").json()
    return seen


@pytest.fixture
def simulator(request: pytest.FixtureRequest, sim: dict[str, Any]) -> RunningSimulator:
    running: RunningSimulator = sim[request.param]
    return running


@pytest.mark.parametrize("simulator", VENDORS, indirect=True)
def test_right_credentials_succeed_and_start_no_export(simulator: RunningSimulator) -> None:
    vendor = simulator.vendor
    conn_id = _define(f"{vendor}_probe_ok", simulator)
    before = _exports(simulator)

    ok, message = HOOKS[vendor](conn_id).test_connection()

    assert ok, message
    assert message.startswith(f"{HOOKS[vendor].hook_name} accepted the credentials")
    seen = _requests(simulator)
    # one read of the API (after a token, for the OAuth vendors); nothing submitted
    api_calls = [r for r in seen if "token" not in r["path"]]
    assert [r["method"] for r in api_calls] == ["GET"], seen
    after = _exports(simulator)
    if vendor == "maxsight":
        # no job exists at Maxsight: the probe is an export of an empty window (one
        # instant in 2000), which selects and sends no event
        new = [after[key] for key in sorted(set(after) - set(before))]
        assert [(record["rows"], record["status"]) for record in new] == [(0, "sent")]
        assert "range_start=2000-01-01T00" in new[0]["query"]
    else:
        assert after == before  # no export job, download or report task


@pytest.mark.parametrize("simulator", VENDORS, indirect=True)
def test_a_wrong_secret_fails_with_the_vendors_message_and_no_secret(
    simulator: RunningSimulator,
) -> None:
    vendor = simulator.vendor
    conn_id = _define(f"{vendor}_probe_wrong", simulator, password=WRONG_SECRET)
    before = _exports(simulator)

    ok, message = HOOKS[vendor](conn_id).test_connection()

    assert not ok
    assert f"{HOOKS[vendor].hook_name} refused the credentials" in message
    assert VENDOR_MESSAGES[vendor] in message
    assert WRONG_SECRET not in message
    assert "401" in message
    assert _exports(simulator) == before


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_message_never_holds_the_secret_even_when_the_vendor_echoes_it(
    vendor: str, sim: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vendor whose error text repeats the key sent (the simulators do not; a real
    gateway might): the message the Test button shows has it replaced by ***."""
    import compliance_exports.core.auth as auth

    def echo(*args: Any) -> str:
        return f"key {WRONG_SECRET} is not valid"

    simulator = sim[vendor]
    conn_id = _define(f"{vendor}_probe_echo", simulator, password=WRONG_SECRET)
    hook = HOOKS[vendor](conn_id)
    monkeypatch.setattr(hook, "parse_error", echo)  # the API's error body
    monkeypatch.setattr(auth, "oauth_error_text", echo)  # the token endpoint's

    ok, message = hook.test_connection()

    assert not ok
    assert "key *** is not valid" in message, message
    assert WRONG_SECRET not in message


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_unreachable_host_fails_clearly(vendor: str, sim: dict[str, Any]) -> None:
    simulator = sim[vendor]
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    extra = {"token_url": f"{nowhere}/oauth/token"} if "token_url" in simulator.extra else {}
    conn_id = _define(f"{vendor}_probe_nowhere", simulator, host=nowhere, extra=extra)

    ok, message = HOOKS[vendor](conn_id).test_connection()

    assert not ok
    assert message.startswith(f"cannot reach {HOOKS[vendor].hook_name} at {nowhere}"), message
    assert "ConnectError" in message
    assert "refused" in message.lower()
    assert simulator.credentials["password"] not in message


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_bad_extra_fails_naming_the_field(vendor: str, sim: dict[str, Any]) -> None:
    conn_id = _define(f"{vendor}_probe_bad_extra", sim[vendor], extra={"timeout": "soon"})

    ok, message = HOOKS[vendor](conn_id).test_connection()

    assert not ok
    assert "is not usable: extra.timeout: 'soon' is not in seconds" in message
    assert _requests(sim[vendor]) == []


def test_a_server_that_is_not_the_vendor_api_fails(sim: dict[str, Any]) -> None:
    """Veza's probe is a 404 for an unknown export: a 404 without Veza's NOT_FOUND body
    (another server, a wrong path) is no proof. The Oleria simulator's API answers every
    unknown path with a plain 404, so a Veza connection pointed at it fails."""
    conn_id = _define("veza_probe_elsewhere", sim["veza"], host=sim["oleria"].base_url)

    ok, message = VezaHook(conn_id).test_connection()

    assert not ok
    assert "answered 404: not Veza's NOT_FOUND status body" in message


def test_airflow_builds_the_hook_from_a_connection(sim: dict[str, Any]) -> None:
    """The UI's Test button (``Connection.test_connection``) builds the hook as
    ``hook_class(**{conn_name_attr: conn_id})`` from the provider's connection type."""
    from airflow.models.connection import Connection

    conn = sim["veza"].connection()
    set_connection("veza_probe_model", conn)
    model = Connection(
        conn_id="veza_probe_model",
        conn_type="veza",
        host=conn["host"],
        password=conn["password"],
        extra=json.dumps(conn["extra"]),
    )

    ok, message = model.test_connection()

    assert ok, message
    assert VezaHook(veza_conn_id="veza_probe_model").conn_id == "veza_probe_model"
    with pytest.raises(TypeError, match="oleria_conn_id"):
        VezaHook(oleria_conn_id="x")


def test_a_hook_that_declares_no_probe_says_so(sim: dict[str, Any]) -> None:
    class NoProbeHook(VezaHook):
        probe_call = ExportHook.probe_call  # type: ignore[assignment]

    conn_id = _define("veza_probe_none", sim["veza"])

    ok, message = NoProbeHook(conn_id).test_connection()

    assert not ok
    assert message == "NoProbeHook declares no probe_call: its connection cannot be tested"
    assert _requests(sim["veza"]) == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_probe_holds_under_the_hostile_profile(
    vendor: str, hostile_simulators: dict[str, Any]
) -> None:
    """Every CHOICE at its least convenient alternative (SailPoint's unknown task is
    ``{}``, Maxsight refuses unknown parameters and may send an empty error body...)."""
    simulator = hostile_simulators[vendor]
    good = _define(f"{vendor}_probe_hostile", simulator)
    wrong = _define(f"{vendor}_probe_hostile_wrong", simulator, password=WRONG_SECRET)

    ok, message = HOOKS[vendor](good).test_connection()
    assert ok, message

    ok, message = HOOKS[vendor](wrong).test_connection()
    assert not ok
    assert f"{HOOKS[vendor].hook_name} refused the credentials" in message
    assert WRONG_SECRET not in message
