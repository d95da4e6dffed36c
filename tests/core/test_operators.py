"""Submit and sensor bases: validation first, re-attachment, execute_complete outcomes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from compliance_exports.core.errors import ExportError, ExportValidationError, FatalError
from compliance_exports.core.operators import redact_request, request_fingerprint
from compliance_exports.core.states import ExportPhase, ExportState
from compliance_exports.vendors.oleria.operators import OleriaDownloadOperator
from compliance_exports.vendors.sailpoint.sensors import SailPointReportSensor
from compliance_exports.vendors.sailpoint.triggers import SailPointReportTrigger
from compliance_exports.vendors.veza.operators import VezaAccessReviewExportOperator

SUCCEEDED = ExportState("t1", ExportPhase.SUCCEEDED, "SUCCESS").to_dict()
FAILED = ExportState("t1", ExportPhase.FAILED, "FAILURE", message="disk full").to_dict()


class TestRequestHelpers:
    def test_redact_request_drops_secret_looking_keys_at_any_depth(self) -> None:
        request = {"context": "x", "params": {"apiKey": "k", "client_secret": "s", "a": 1}}
        assert redact_request(request) == {"context": "x", "params": {"a": 1}}

    def test_fingerprint_ignores_key_order(self) -> None:
        assert request_fingerprint({"a": 1, "b": 2}) == request_fingerprint({"b": 2, "a": 1})


class TestSubmitValidation:
    def test_unknown_oleria_context_names_the_field(self) -> None:
        op = OleriaDownloadOperator(task_id="t", context="identitiez")
        with pytest.raises(ExportValidationError, match="context"):
            op.build_request()

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"format": 3}, "format"), ({"format": 6, "title": "x" * 31}, "title")],
    )
    def test_veza_arguments_name_the_field(self, kwargs: dict[str, Any], field: str) -> None:
        op = VezaAccessReviewExportOperator(task_id="t", certification_id="c1", **kwargs)
        with pytest.raises(ExportValidationError, match=field):
            op.build_request()

    def test_veza_request_keeps_only_given_fields(self) -> None:
        op = VezaAccessReviewExportOperator(
            task_id="t", certification_id="c1", order_by="source.name ASC"
        )
        assert op.build_request() == {
            "format": 0,
            "certification_id": "c1",
            "order_by": "source.name ASC",
        }

    def test_template_fields_are_declared(self) -> None:
        assert {"context", "filter_by", "sort_by"} <= set(OleriaDownloadOperator.template_fields)


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
