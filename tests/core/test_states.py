"""Export phases, states and status maps."""

from __future__ import annotations

import pytest

from compliance_exports.core.errors import UnknownStatusError
from compliance_exports.core.states import ExportPhase, ExportState, StatusMap


class TestExportPhase:
    @pytest.mark.parametrize(
        ("phase", "terminal", "successful"),
        [
            (ExportPhase.PENDING, False, False),
            (ExportPhase.RUNNING, False, False),
            (ExportPhase.SUCCEEDED, True, True),
            (ExportPhase.FAILED, True, False),
            (ExportPhase.CANCELLED, True, False),
            (ExportPhase.EXPIRED, True, False),
        ],
    )
    def test_terminal_and_successful(
        self, phase: ExportPhase, terminal: bool, successful: bool
    ) -> None:
        assert phase.is_terminal is terminal
        assert phase.is_successful is successful


class TestExportState:
    def test_round_trips_through_a_dict(self) -> None:
        state = ExportState(
            "j1", ExportPhase.SUCCEEDED, "completed", "ok", "https://x/y?sig=1", "50%", {"a": 1}
        )
        assert ExportState.from_dict(state.to_dict()) == state

    def test_public_dict_drops_the_download_link(self) -> None:
        state = ExportState("j1", ExportPhase.SUCCEEDED, "completed", download_url="https://x")
        assert state.public_dict()["download_url"] is None

    def test_from_dict_rejects_an_unknown_phase(self) -> None:
        with pytest.raises(ValueError, match="not an export state"):
            ExportState.from_dict({"job_id": "j", "phase": "done", "raw_status": "x"})


class TestStatusMap:
    MAP = StatusMap(
        "acme",
        {"RUNNING": ExportPhase.RUNNING, "DONE": ExportPhase.SUCCEEDED},
        strip_prefix="JOB_",
    )

    @pytest.mark.parametrize("word", ["DONE", "done", " JOB_DONE ", "job_done"])
    def test_tolerates_case_and_prefix(self, word: str) -> None:
        assert self.MAP.phase_of(word) is ExportPhase.SUCCEEDED

    @pytest.mark.parametrize("word", ["SUCCESS", "", None, "JOB_"])
    def test_unknown_word_is_an_error_never_success(self, word: str | None) -> None:
        with pytest.raises(UnknownStatusError, match="acme reported unknown status"):
            self.MAP.phase_of(word)
