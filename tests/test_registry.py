"""The export registry: the default file is valid, and each kind of bad entry is named."""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from compliance_exports.core.vendor import builtin_vendor_names
from compliance_exports.registry import (
    DEFAULT_REGISTRY,
    ExportKind,
    RegistryError,
    load_registry,
    parse_registry,
)

DOC: dict[str, Any] = yaml.safe_load(DEFAULT_REGISTRY.read_text())


def with_change(path: str, value: Any) -> dict[str, Any]:
    """A copy of the default registry with ``path`` (dotted, 'exports.x.y') set to value."""
    doc = copy.deepcopy(DOC)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()


class TestDefaultRegistry:
    def test_covers_every_vendor_and_format(self) -> None:
        registry = load_registry()
        assert {e.vendor.name for e in registry.entries} == set(builtin_vendor_names())
        veza_formats = {e.params["format"] for e in registry.entries if e.vendor.name == "veza"}
        assert veza_formats == {"csv", "xlsx"}
        sailpoint = {
            e.params["file_format"] for e in registry.entries if e.vendor.name == "sailpoint"
        }
        assert sailpoint == {"csv", "pdf"}
        [audit] = [e for e in registry.entries if e.vendor.name == "maxsight"]
        assert "pdf" in audit.params["file_types"]
        assert audit.kind is ExportKind.WINDOWED

    def test_one_dag_per_vendor(self) -> None:
        assert set(load_registry().by_dag()) == {f"{v}_exports" for v in builtin_vendor_names()}

    def test_defaults_apply(self) -> None:
        entry = load_registry().get("oleria_identities")
        assert entry.retries >= 2
        assert entry.retry_delay == dt.timedelta(minutes=2)
        assert entry.lake.sse == "AES256"
        assert entry.pool == "oleria"
        assert entry.conn_id == "oleria_default"
        assert "resubmits" not in DOC["defaults"]
        assert "poll_interval" not in DOC["defaults"]
        assert entry.resubmits == 1  # one new job after a failed one, unless the entry says
        assert entry.poll_interval == dt.timedelta(seconds=15)
        changed = parse_registry(with_change("exports.oleria_identities.resubmits", 0))
        assert changed.get("oleria_identities").resubmits == 0

    def test_loading_imports_no_network_client(self) -> None:
        code = (
            "import sys; from compliance_exports.registry import load_registry; load_registry(); "
            "print(sorted({'httpx', 'boto3', 'botocore', 'airflow'} & set(sys.modules)))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parents[1],
        )  # fmt: skip
        assert out.stdout.strip() == "[]"

    def test_env_var_points_at_another_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        doc = copy.deepcopy(DOC)
        doc["exports"] = {"only_one": DOC["exports"]["sailpoint_identities"]}
        path = tmp_path / "mine.yaml"
        path.write_text(yaml.safe_dump(doc))
        monkeypatch.setenv("COMPLIANCE_EXPORTS_REGISTRY", str(path))
        assert [e.name for e in load_registry().entries] == ["only_one"]

    def test_an_installed_package_has_no_default_and_says_which_variable_to_set(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Installed from the wheel, the repository's include/ is not there: the error
        names the variable instead of a path inside site-packages."""
        import compliance_exports.registry as registry

        monkeypatch.delenv("COMPLIANCE_EXPORTS_REGISTRY", raising=False)
        monkeypatch.setattr(registry, "DEFAULT_REGISTRY", tmp_path / "include" / "exports.yaml")
        with pytest.raises(RegistryError, match="set COMPLIANCE_EXPORTS_REGISTRY to your registry"):
            load_registry()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "exports.oleria_identities.vendor",
            "okta",
            "exports.oleria_identities.vendor: 'okta' is not a vendor (built in: maxsight, oleria,",
        ),
        (
            "exports.oleria_identities.kind",
            "daily",
            "exports.oleria_identities.kind: 'daily' is not one of windowed, snapshot",
        ),
        (
            "exports.oleria_identities.oleria.context",
            "accessInventoryIdentities",
            "exports.oleria_identities.oleria.context: unknown context",
        ),
        (
            "exports.oleria_employee_events.oleria.filter_by",
            [{"dataType": "string", "field": "name", "filterType": "gt", "values": ["a"]}],
            "exports.oleria_employee_events.oleria.params.filterBy[0].filterType: 'gt' is not "
            "allowed for dataType 'string'",
        ),
        (
            "exports.oleria_employee_events.oleria.window_field",
            DELETE,
            "oleria.window_field: a windowed Oleria export names",
        ),
        (
            "exports.veza_access_review.veza.format",
            "pdf",
            "veza_access_review.veza.format: 'pdf' is not one of csv, xlsx",
        ),
        (
            "exports.veza_access_review_diff.veza.title",
            "Quarterly access review changes!",
            "veza_access_review_diff.veza.title:",
        ),
        (
            "exports.veza_access_review.veza.title",
            "CSV has no title",
            "veza_access_review.veza.title:",
        ),
        (
            "exports.veza_access_review.veza.filter",
            "source.name eq",
            "veza_access_review.veza.filter:",
        ),
        ("exports.sailpoint_identities.sailpoint.arguments", {}, "sailpoint_identities.sailpoint."),
        (
            "exports.sailpoint_identities.sailpoint.report_type",
            "EVERYTHING",
            "sailpoint_identities.sailpoint.",
        ),
        (
            "exports.maxsight_audit_events.maxsight.metadata",
            {"colour": "red"},
            "maxsight_audit_events.maxsight.metadata",
        ),
        (
            "exports.maxsight_audit_events.maxsight.filters",
            {"severity": ["high"]},
            "maxsight.filters: unknown ['severity']",
        ),
        ("exports.maxsight_audit_events.maxsight.file_types", ["pdf"], "csv is required"),
        (
            "exports.maxsight_audit_events.maxsight.window_limit",
            6000,
            "window_limit: 6000 is not in 1..5000",
        ),
        (
            "exports.maxsight_audit_events.maxsight.timezone",
            "Mars/Base",
            "maxsight_audit_events.maxsight.timezone",
        ),
        (
            "exports.maxsight_audit_events.kind",
            "snapshot",
            "maxsight.kind: a maxsight export is windowed",
        ),
        (
            "exports.oleria_identities.schema",
            {"isAdmin": "boolean-ish"},
            "oleria_identities.schema:",
        ),
        (
            "exports.oleria_identities.schedule",
            "every night",
            "oleria_identities.schedule: 'every night' is not a 5-field cron",
        ),
        ("exports.oleria_identities.schedule", "99 0 * * *", "is not a valid cron expression"),
        (
            "exports.oleria_identities.timezone",
            "Europe/Atlantis",
            "oleria_identities.timezone: 'Europe/Atlantis' is not an IANA timezone",
        ),
        (
            "exports.oleria_identities.retries",
            1,
            "oleria_identities.retries: 1; nightly exports need retries >= 2",
        ),
        (
            "exports.oleria_identities.wait_timeout",
            "soon",
            "wait_timeout: 'soon' is not a duration",
        ),
        ("exports.oleria_identities.resubmits", -1, "resubmits: -1 is not a count >= 0"),
        ("exports.oleria_identities.resubmits", True, "resubmits: True is not a count >= 0"),
        ("exports.oleria_identities.resubmits", "2", "resubmits: '2' is not a count >= 0"),
        ("exports.oleria_identities.poll_interval", "often", "poll_interval: 'often'"),
        (
            "exports.oleria_identities.lake",
            {"sse": "aws:kms"},
            "lake.kms_key_id: required when sse is aws:kms",
        ),
        ("exports.oleria_identities.lake", {"bucket": "Not_A_Bucket"}, "lake.bucket"),
        (
            "exports.oleria_identities.colour",
            "red",
            "exports.oleria_identities: unknown field(s) colour",
        ),
        (
            "exports.oleria_identities.dataset",
            "Identities!",
            "oleria_identities.dataset: 'Identities!' must be lower_snake_case",
        ),
        (
            "exports.veza_access_review_diff.dataset",
            "access_review",
            "lands in the same dataset as veza_access_review",
        ),
    ],
)
def test_invalid_entry_names_entry_and_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(RegistryError) as err:
        parse_registry(with_change(path, value), source="exports.yaml")
    assert str(err.value).startswith("exports.yaml: ")
    assert message in str(err.value)


def test_entries_of_one_dag_must_share_its_schedule() -> None:
    doc = with_change("exports.oleria_employee_events.schedule", "0 6 * * *")
    with pytest.raises(RegistryError, match="shares dag 'oleria_exports' with oleria_identities"):
        parse_registry(doc, source="exports.yaml")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("exports: [unclosed")
    with pytest.raises(RegistryError, match="cannot be read as YAML"):
        load_registry(path)


def test_empty_registry() -> None:
    with pytest.raises(RegistryError, match="no exports defined"):
        parse_registry({"exports": {}}, source="x")
