"""The SailPoint simulator's readings of the spec that were once wrong, and its CHOICES.

Each test here fails on the simulator as it was before issue #13: it returned a running
task only for identical arguments, refused unknown argument keys, served
``/v3/task-status``, and had no PAT / zip / unknown-result settings. It also shared the
client's report table: tests/simulators/test_independence.py guards every simulator
against importing client code.
The echo, cancel-outcome and foreign-task tests fail on it as it was before they came:
``attributes`` always echoed the arguments, a cancel always ended TERMINATED, and no run
ever met a task someone else had started.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest

from include.simulators import RunningSimulator, start_simulator
from include.simulators.sailpoint import (
    CANCEL_OUTCOMES,
    FOREIGN_LAUNCHER,
    HOSTILE,
    SailPointSettings,
)
from include.simulators.sailpoint_reports import SIM_REPORTS, other_arguments
from tests.openapi.sailpoint_validator import assert_answers_valid

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PAT_ID, PAT_SECRET = "pat-of-a-user", "pat-secret"
SEARCH = {
    "reportType": "SEARCH_EXPORT",
    "arguments": {"query": "name:a*", "indices": ["identities", "roles"], "columns": "id,name"},
}


class Client:
    """One set of client credentials against a simulator: its token and report calls."""

    def __init__(self, sim: RunningSimulator, client_id: str, secret: str) -> None:
        self.http = httpx.Client(base_url=sim.base_url, timeout=15)
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": secret}  # fmt: skip
        token = self.http.post("/oauth/token", data=form).raise_for_status().json()
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"

    def run(self, report: str, **arguments: Any) -> httpx.Response:
        return self.http.post(
            "/v3/reports/run", json={"reportType": report, "arguments": arguments}
        )

    def started(self, report: str, **arguments: Any) -> str:
        response = self.run(report, **arguments)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def result(self, task_id: str) -> httpx.Response:
        return self.http.get(f"/v3/reports/{task_id}/result", params={"completed": "false"})

    def done(self, task_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body: dict[str, Any] = self.result(task_id).json()
            if body.get("status"):
                return body
            time.sleep(0.05)
        raise AssertionError(f"{task_id} did not finish")

    def cancel(self, task_id: str) -> httpx.Response:
        return self.http.post(f"/v3/reports/{task_id}/cancel")

    def file(self, task_id: str, file_format: str = "csv") -> httpx.Response:
        return self.http.get(f"/v3/reports/{task_id}", params={"fileFormat": file_format})


@pytest.fixture
def start() -> Iterator[Any]:
    """``start(**settings)`` -> a simulator with a PAT client; checked and stopped after."""
    started: list[RunningSimulator] = []

    def make(**settings: Any) -> RunningSimulator:
        base = {"rows": 4, "latency": 0.05, "pat_clients": {PAT_ID: PAT_SECRET}}
        sim = start_simulator("sailpoint", seed=3, **{**base, **settings})
        started.append(sim)
        return sim

    yield make
    for sim in started:
        try:
            assert_answers_valid(sim.base_url)
        finally:
            sim.stop()


def api_client(sim: RunningSimulator) -> Client:
    return Client(sim, sim.credentials["login"], sim.credentials["password"])


def pat_client(sim: RunningSimulator) -> Client:
    return Client(sim, PAT_ID, PAT_SECRET)


def error_text(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"detailCode", "trackingId", "messages", "causes"}
    return str(body["messages"][0]["text"])


def members(content: bytes) -> dict[str, list[str]]:
    """The header row of each CSV in a zip."""
    archive = zipfile.ZipFile(io.BytesIO(content))
    return {
        name: next(csv.reader(io.StringIO(archive.read(name).decode())))
        for name in archive.namelist()
    }


def started_seconds_ago(task: dict[str, Any]) -> float:
    """How long ago a ``TaskResultDetails`` says its task was created (and launched)."""
    created = dt.datetime.fromisoformat(task["created"].replace("Z", "+00:00"))
    assert task["launched"] == task["created"]
    return (dt.datetime.now(dt.UTC) - created).total_seconds()


class TestRunningTask:
    def test_a_run_gets_the_running_task_of_its_type_whatever_its_arguments(
        self, start: Any
    ) -> None:
        """DOC, hostile reading (the default): the task definition, not the arguments."""
        client = api_client(start(latency=30))
        first = client.run("ACCOUNTS", application="a1", sourceName="Source A").json()
        other = client.run("ACCOUNTS", application="b2", sourceName="Source B").json()
        unrelated = client.started("IDENTITIES")

        assert other["id"] == first["id"]
        assert other["attributes"]["sourceName"] == "Source A"  # someone else's task
        assert unrelated != first["id"]
        assert client.cancel(first["id"]).status_code == 204
        assert client.started("ACCOUNTS", application="b2", sourceName="B") != first["id"]
        client.cancel(unrelated)

    def test_same_arguments_only_is_a_setting(self, start: Any) -> None:
        client = api_client(start(latency=30, running_task_match="same_arguments"))
        first = client.started("ACCOUNTS", application="a1", sourceName="Source A")
        same = client.started("ACCOUNTS", application="a1", sourceName="Source A")
        other = client.started("ACCOUNTS", application="b2", sourceName="Source B")

        assert same == first != other
        for task_id in (first, other):
            client.cancel(task_id)

    def test_attributes_echo_the_arguments_by_default(self, start: Any) -> None:
        client = api_client(start())
        body = client.run("ACCOUNTS", application="a1", sourceName="Source A").json()

        assert body["attributes"] == {
            "reportType": "ACCOUNTS", "application": "a1", "sourceName": "Source A"
        }  # fmt: skip
        client.done(body["id"])

    def test_attributes_may_carry_no_argument(self, start: Any) -> None:
        """CHOICE echo_arguments=False: the spec does not promise the echo; a run answered
        with someone else's task then shows only its type and its times."""
        sim = start(latency=30, echo_arguments=False)
        client = api_client(sim)
        first = client.run("ACCOUNTS", application="a1", sourceName="Source A").json()
        other = client.run("ACCOUNTS", application="b2", sourceName="Source B").json()

        assert first["attributes"] == other["attributes"] == {}
        assert other["id"] == first["id"]
        assert other["reportType"] == "ACCOUNTS"
        with sim.admin() as admin:
            facts = admin.get("/_sim/facts").json()
        assert facts["exports"][first["id"]]["arguments"]["sourceName"] == "Source A"
        client.cancel(first["id"])

    def test_the_launcher_is_the_client_that_started_it(self, start: Any) -> None:
        sim = start()
        body = pat_client(sim).run("IDENTITIES").json()

        assert body["launcher"] == PAT_ID
        api_client(sim).done(body["id"])


class TestCancel:
    def test_api_clients_may_cancel_by_default(self, start: Any) -> None:
        client = api_client(start(latency=30))
        task_id = client.started("IDENTITIES")

        assert client.cancel(task_id).status_code == 204
        assert client.result(task_id).json()["status"] == "TERMINATED"

    def test_cancel_may_need_a_personal_access_token(self, start: Any) -> None:
        """CHOICE cancel_requires_pat: cancel is declared for userAuth only."""
        sim = start(latency=30, cancel_requires_pat=True)
        api, pat = api_client(sim), pat_client(sim)
        task_id = api.started("IDENTITIES")

        refused = api.cancel(task_id)
        still_running = api.result(task_id).json()
        accepted = pat.cancel(task_id)

        assert refused.status_code == 403
        assert "personal access token" in error_text(refused)
        assert "status" not in still_running
        assert accepted.status_code == 204
        assert api.result(task_id).json()["status"] == "TERMINATED"

    def test_a_cancel_may_end_the_task_error(self, start: Any) -> None:
        """CHOICE cancel_outcome="error": ERROR, a FAILURE result, no file."""
        sim = start(latency=30, cancel_outcome="error")
        client = api_client(sim)
        task_id = client.started("IDENTITIES")

        assert client.cancel(task_id).status_code == 204
        assert client.result(task_id).json()["status"] == "FAILURE"
        assert client.file(task_id).status_code == 404
        with sim.admin() as admin:
            task = admin.get("/_sim/facts").json()["exports"][task_id]
        assert task["status"] == "ERROR"
        assert task["messages"][-1]["type"] == "ERROR"

    @pytest.mark.parametrize("unknown_result", ["not_found", "empty"])
    def test_a_cancelled_task_may_be_gone(self, start: Any, unknown_result: str) -> None:
        """CHOICE cancel_outcome="removed": the task id is unknown from then on."""
        sim = start(latency=30, cancel_outcome="removed", unknown_result=unknown_result)
        client = api_client(sim)
        task_id = client.started("IDENTITIES")

        assert client.cancel(task_id).status_code == 204
        result = client.result(task_id)
        if unknown_result == "empty":
            assert (result.status_code, result.json()) == (200, {})
        else:
            assert result.status_code == 404
            assert task_id in error_text(result)
        assert client.file(task_id).status_code == 404
        assert client.cancel(task_id).status_code == 400
        with sim.admin() as admin:
            facts = admin.get("/_sim/facts").json()
        assert task_id not in facts["exports"]
        assert facts["removed"] == [task_id]
        new = client.started("IDENTITIES")  # it no longer holds its report type
        assert new != task_id
        client.cancel(new)

    def test_a_cancelled_task_may_run_on_to_its_end(self, start: Any) -> None:
        """CHOICE cancel_outcome="runs_on": 204, and the task ends as it would have."""
        client = api_client(start(latency=1.0, cancel_outcome="runs_on"))
        task_id = client.started("IDENTITIES")

        assert client.cancel(task_id).status_code == 204
        assert "status" not in client.result(task_id).json()
        assert client.started("IDENTITIES") == task_id  # still the running task of its type
        assert client.done(task_id)["status"] == "SUCCESS"
        assert client.file(task_id).status_code == 200

    def test_a_never_ending_task_cancelled_runs_on(self, start: Any) -> None:
        sim = start(cancel_outcome="runs_on", faults=[{"kind": "never_finish"}])
        client = api_client(sim)
        task_id = client.started("IDENTITIES")

        assert client.cancel(task_id).status_code == 204
        time.sleep(0.2)
        assert "status" not in client.result(task_id).json()
        with sim.admin() as admin:
            admin.patch("/_sim/config", json={"cancel_outcome": "terminated"})
        client.cancel(task_id)
        assert client.result(task_id).json()["status"] == "TERMINATED"

    def test_every_cancel_outcome_is_a_valid_setting(self) -> None:
        for outcome in CANCEL_OUTCOMES:
            SailPointSettings(cancel_outcome=outcome)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cancel_outcome"):
            SailPointSettings(cancel_outcome="deleted")  # type: ignore[arg-type]

    def test_unknown_task_is_a_400_not_a_404(self, start: Any) -> None:
        response = pat_client(start()).cancel("0" * 32)

        assert response.status_code == 400
        assert "0" * 32 in error_text(response)

    def test_a_wrong_pat_secret_gets_no_token(self, start: Any) -> None:
        sim = start()
        form = {"grant_type": "client_credentials", "client_id": PAT_ID, "client_secret": "x"}

        response = httpx.post(f"{sim.base_url}/oauth/token", data=form)

        assert response.status_code == 401


class TestForeignTask:
    def test_the_first_run_of_each_type_meets_someone_elses_running_task(self, start: Any) -> None:
        """CHOICE foreign_task_at_first_run: a task of the type, other arguments, another
        launcher, started foreign_task_age seconds ago, still running; then ours."""
        sim = start(latency=0.5, foreign_task_at_first_run=True)
        client = api_client(sim)
        theirs = client.run("ACCOUNTS", application="a1", sourceName="Source A").json()
        again = client.run("ACCOUNTS", application="a1", sourceName="Source A").json()
        finished = client.done(theirs["id"])
        ours = client.run("ACCOUNTS", application="a1", sourceName="Source A").json()
        other_type = client.run("IDENTITIES").json()

        assert theirs["launcher"] == FOREIGN_LAUNCHER
        assert theirs["completionStatus"] is None
        assert theirs["attributes"]["sourceName"] != "Source A"
        assert 595 < started_seconds_ago(theirs) < 630
        assert again["id"] == theirs["id"]  # running: every run of the type gets it back
        assert finished["status"] == "SUCCESS"
        assert finished["duration"] >= 600_000
        assert ours["id"] != theirs["id"]
        assert ours["launcher"] == sim.credentials["login"]
        assert ours["attributes"]["sourceName"] == "Source A"
        assert started_seconds_ago(ours) < 30
        assert other_type["launcher"] == FOREIGN_LAUNCHER  # each report type once
        assert client.done(ours["id"])["status"] == "SUCCESS"
        client.done(other_type["id"])

    def test_none_is_added_beside_a_running_task_of_the_type(self, start: Any) -> None:
        """The type runs one task at a time: a first run that finds one running gets it."""
        sim = start(latency=30)
        client = api_client(sim)
        running = client.started("IDENTITIES")
        with sim.admin() as admin:
            admin.patch("/_sim/config", json={"foreign_task_at_first_run": True})
        same_type = client.run("IDENTITIES", correlatedOnly=True).json()
        other_type = client.run("ORPHAN_IDENTITIES").json()

        with sim.admin() as admin:
            exports = admin.get("/_sim/facts").json()["exports"]

        assert same_type["id"] == running
        assert other_type["launcher"] == FOREIGN_LAUNCHER
        assert len(exports) == 2
        for task_id in exports:
            client.cancel(task_id)

    def test_its_age_is_a_setting(self, start: Any) -> None:
        client = api_client(start(foreign_task_at_first_run=True, foreign_task_age=30))
        theirs = client.run("IDENTITIES_DETAILS", correlatedOnly=True).json()

        assert theirs["launcher"] == FOREIGN_LAUNCHER
        assert theirs["attributes"]["correlatedOnly"] is False
        assert 25 < started_seconds_ago(theirs) < 60
        client.done(theirs["id"])

    def test_with_same_arguments_matching_it_runs_beside_ours(self, start: Any) -> None:
        sim = start(latency=30, foreign_task_at_first_run=True, running_task_match="same_arguments")
        client = api_client(sim)
        ours = client.run("IDENTITIES").json()

        assert ours["launcher"] == sim.credentials["login"]
        with sim.admin() as admin:
            exports = admin.get("/_sim/facts").json()["exports"]
        [foreign] = [tid for tid, t in exports.items() if t["launcher"] == FOREIGN_LAUNCHER]
        assert exports[foreign]["status"] == "RUNNING"
        assert exports[foreign]["arguments"] == {"correlatedOnly": True}
        for task_id in (ours["id"], foreign):
            client.cancel(task_id)

    @pytest.mark.parametrize(
        ("report", "ours"),
        [
            ("ACCOUNTS", {"application": "a", "sourceName": "another team's sourceName"}),
            ("IDENTITIES_DETAILS", {"correlatedOnly": True}),
            ("IDENTITIES", {}),
            ("IDENTITY_PROFILE_IDENTITY_ERROR", {"authoritativeSource": "Workday"}),
            ("ORPHAN_IDENTITIES", {}),
            ("UNCORRELATED_ACCOUNTS", {"selectedFormats": ["PDF"]}),
            ("UNCORRELATED_ACCOUNTS", {"selectedFormats": ["CSV"]}),
            ("SEARCH_EXPORT", {"query": "*", "indices": ["identities"], "columns": "id"}),
            ("SEARCH_EXPORT", {"query": "*", "indices": ["accessprofiles"]}),
        ],
    )
    def test_its_arguments_are_valid_and_differ_from_ours(
        self, report: str, ours: dict[str, Any]
    ) -> None:
        theirs = other_arguments(SIM_REPORTS[report], ours)

        SIM_REPORTS[report].check(theirs)
        assert theirs
        assert set(ours) - {"columns"} <= set(theirs)
        assert all(theirs[key] != value for key, value in ours.items() if key in theirs)


class TestArguments:
    def test_unknown_keys_are_accepted_and_ignored(self, start: Any) -> None:
        client = api_client(start())
        task_id = client.started("IDENTITIES_DETAILS", correlatedOnly=True, typo=1, extra=[])

        assert client.done(task_id)["status"] == "SUCCESS"

    def test_s3_bucket_arguments_mean_nothing(self, start: Any) -> None:
        """Removed from the spec in June 2024: no longer typed, just an unknown key."""
        client = api_client(start())
        task_id = client.started(
            "ACCOUNTS", application="a", sourceName="S", defaultS3Bucket="yes", s3Bucket=7
        )

        assert client.done(task_id)["availableFormats"] == ["CSV", "PDF"]

    @pytest.mark.parametrize("formats", [["csv"], ["Pdf"], ["XLSX"], "CSV"])
    def test_selected_formats_are_exactly_csv_and_pdf(self, start: Any, formats: Any) -> None:
        response = api_client(start()).run("UNCORRELATED_ACCOUNTS", selectedFormats=formats)

        assert response.status_code == 400
        assert error_text(response).startswith("arguments.selectedFormats")

    def test_selected_formats_narrow_the_available_formats(self, start: Any) -> None:
        client = api_client(start())
        task_id = client.started("UNCORRELATED_ACCOUNTS", selectedFormats=["CSV"])

        assert client.done(task_id)["availableFormats"] == ["CSV"]
        assert client.file(task_id, "pdf").status_code == 400
        assert client.file(task_id, "csv").status_code == 200

    @pytest.mark.parametrize("file_format", ["CSV", "Pdf"])
    def test_file_format_is_lower_case(self, start: Any, file_format: str) -> None:
        client = api_client(start())
        task_id = client.started("IDENTITIES")
        client.done(task_id)

        assert client.file(task_id, file_format).status_code == 400


class TestNoTaskStatus:
    def test_there_is_no_v3_task_status(self, start: Any) -> None:
        client = api_client(start())
        task_id = client.started("IDENTITIES")

        assert client.http.get(f"/v3/task-status/{task_id}").status_code == 404
        client.done(task_id)


class TestResults:
    def test_no_status_while_running_and_no_setting_for_a_null_one(self, start: Any) -> None:
        sim = start(latency=30)
        client = api_client(sim)
        task_id = client.started("IDENTITIES")

        running = client.result(task_id).json()
        with sim.admin() as admin:
            patched = admin.patch("/_sim/config", json={"running_result_status": "null"})

        assert "status" not in running
        assert patched.status_code == 400
        client.cancel(task_id)

    def test_unknown_task_404_or_empty(self, start: Any) -> None:
        sim = start()
        client = api_client(sim)
        not_found = client.result("f" * 32)
        with sim.admin() as admin:
            admin.patch("/_sim/config", json={"unknown_result": "empty"}).raise_for_status()
        empty = client.result("f" * 32)

        assert not_found.status_code == 404
        assert "f" * 32 in error_text(not_found)
        assert (empty.status_code, empty.json()) == (200, {})


class TestSearchExportZip:
    def test_served_as_application_zip_by_default(self, start: Any) -> None:
        client = api_client(start())
        task_id = client.started(SEARCH["reportType"], **SEARCH["arguments"])
        client.done(task_id)

        response = client.file(task_id)

        assert response.headers["content-type"] == "application/zip"
        assert members(response.content) == {
            "identities.csv": ["id", "name"],
            "roles.csv": ["id", "name"],
        }

    def test_may_be_served_as_application_csv(self, start: Any) -> None:
        client = api_client(start(zip_content_type="application/csv"))
        task_id = client.started(SEARCH["reportType"], **SEARCH["arguments"])
        client.done(task_id)

        response = client.file(task_id)

        assert response.headers["content-type"] == "application/csv"
        assert response.content.startswith(b"PK\x03\x04")  # still a zip, by its bytes

    def test_member_headers_may_differ(self, start: Any) -> None:
        client = api_client(start(zip_member_headers="per_index"))
        task_id = client.started(SEARCH["reportType"], **SEARCH["arguments"])
        client.done(task_id)

        headers = members(client.file(task_id).content)

        assert headers["identities.csv"][:2] == headers["roles.csv"][:2] == ["id", "name"]
        assert headers["identities.csv"] != headers["roles.csv"]

    def test_pdf_is_refused_though_available_formats_lists_it(self, start: Any) -> None:
        client = api_client(start())
        task_id = client.started(SEARCH["reportType"], **SEARCH["arguments"])

        assert client.done(task_id)["availableFormats"] == ["CSV", "PDF"]
        assert client.file(task_id, "pdf").status_code == 400


class TestHostile:
    def test_every_entry_is_a_setting_and_commented(self) -> None:
        names = {f.name for f in fields(SailPointSettings)}
        source = (REPO / "include" / "simulators" / "sailpoint.py").read_text()
        block = source[source.index("HOSTILE: dict[str, Any] = {") :].split("\n}\n")[0]

        assert set(HOSTILE) <= names
        for key in HOSTILE:
            assert re.search(rf"# [^\n]+\n    \"{key}\": ", block), key
        SailPointSettings(**HOSTILE)  # a valid combination

    def test_every_choice_is_covered(self) -> None:
        choices = {"running_task_match", "cancel_requires_pat", "unknown_result",
                   "zip_content_type", "zip_member_headers", "file_before_done_status",
                   "healthy_completion", "failed_completion", "task_type", "echo_arguments",
                   "cancel_outcome", "foreign_task_at_first_run"}  # fmt: skip

        assert choices <= set(HOSTILE)
        defaults = SailPointSettings()
        changed = {k for k in HOSTILE if getattr(defaults, k) != HOSTILE[k]}
        assert changed == choices - {"running_task_match"}  # the default is already hostile

    def test_a_hostile_tenant(self, start: Any) -> None:
        sim = start(**HOSTILE)
        api = api_client(sim)
        theirs = api.run(SEARCH["reportType"], **SEARCH["arguments"]).json()
        api.done(theirs["id"])
        task_id = api.started(SEARCH["reportType"], **SEARCH["arguments"])
        result = api.done(task_id)
        download = api.file(task_id)
        refused = api.cancel(task_id)

        assert theirs["launcher"] == FOREIGN_LAUNCHER  # someone else's, started long ago
        assert (theirs["type"], theirs["attributes"]) == ("QUEUED_TASK", {})
        assert started_seconds_ago(theirs) > 300
        assert task_id != theirs["id"]
        assert result["status"] == "WARNING"
        assert download.headers["content-type"] == "application/csv"
        assert len(set(map(tuple, members(download.content).values()))) == 2
        assert refused.status_code == 403
        assert api.result("e" * 32).json() == {}

    def test_a_hostile_cancel_is_accepted_and_changes_nothing(self, start: Any) -> None:
        sim = start(**{**HOSTILE, "latency": 1.0})
        pat = pat_client(sim)
        pat.done(pat.run("IDENTITIES").json()["id"])  # someone else's, met first
        task_id = pat.started("IDENTITIES")

        assert pat.cancel(task_id).status_code == 204
        assert "status" not in pat.result(task_id).json()
        assert pat.done(task_id)["status"] == "WARNING"
