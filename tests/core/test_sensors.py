"""The sensor base: validation first, deferral with an absolute deadline, every outcome."""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from compliance_exports.core.errors import ExportError, ExportValidationError, FatalError
from compliance_exports.core.states import ExportPhase, ExportState
from compliance_exports.vendors.sailpoint.sensors import SailPointReportSensor
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger

SUCCEEDED = ExportState("t1", ExportPhase.SUCCEEDED, "SUCCESS").to_dict()
FAILED = ExportState("t1", ExportPhase.FAILED, "FAILURE", message="disk full").to_dict()


class TestSensorCompletion:
    def sensor(self, **kwargs: Any) -> SailPointReportSensor:
        return SailPointReportSensor(task_id="wait", job_id="t1", conn_id="sp_unit", **kwargs)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"poll_interval": 0}, "poll_interval"),
            ({"poll_interval": 10, "max_poll_interval": 5}, "max_poll_interval"),
            ({"stall_timeout": 0}, "stall_timeout"),
        ],
    )
    def test_bad_wait_settings_name_the_field(self, kwargs: dict[str, Any], field: str) -> None:
        with pytest.raises(ExportValidationError, match=field):
            self.sensor(**kwargs)

    def test_empty_job_id_is_refused_before_any_request(self) -> None:
        sensor = SailPointReportSensor(task_id="wait", job_id="", conn_id="sp_unit")
        with pytest.raises(ExportValidationError, match="job_id"):
            sensor.execute({})

    def test_success_returns_the_state(self) -> None:
        result = self.sensor().execute_complete({}, {"status": "success", "state": SUCCEEDED})
        assert result["raw_status"] == "SUCCESS"

    def test_failed_raises_with_the_vendor_message(self) -> None:
        with pytest.raises(FatalError, match="t1 ended FAILURE: disk full"):
            self.sensor().execute_complete({}, {"status": "failed", "state": FAILED})

    def test_timeout_already_cancelled_raises_sensor_timeout(self) -> None:
        event = {"status": "timeout", "message": "not done; cancelled", "cancelled": True}
        with pytest.raises(AirflowSensorTimeout, match="cancelled"):
            self.sensor().execute_complete({}, event)

    def test_error_raises(self) -> None:
        with pytest.raises(ExportError, match="boom"):
            self.sensor().execute_complete({}, {"status": "error", "message": "boom"})

    def test_defers_with_an_absolute_deadline_before_the_framework_timeout(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sensor = self.sensor(timeout=100, poll_interval=5)
        running = ExportState("t1", ExportPhase.RUNNING, "RUNNING")
        monkeypatch.setattr(type(sensor.hook), "get_export_state", lambda self, job_id: running)
        before = time.time()
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute({})
        trigger = deferred.value.trigger
        assert isinstance(trigger, SailPointReportTrigger)
        assert before + 100 <= trigger.deadline <= time.time() + 100
        assert deferred.value.timeout is not None
        assert deferred.value.timeout.total_seconds() > 100
