"""The provider info (``apache_airflow_provider`` entry point) checked in-process, fast.

* valid against Airflow's own schemas: the one the ProvidersManager validates every
  provider with (``provider_info.schema.json``), the stricter ``provider.yaml`` schema of
  ``connection-types`` (``conn-fields``, ``ui-field-behaviour``) and the field-behaviour
  schema the ProvidersManager applies to ``ui-field-behaviour``;
* ``package-name`` is the distribution (pyproject.toml) and the installed entry points
  resolve to this provider and its plugin;
* the connection types are the built-in vendors' own declarations
  (``vendors/<name>/connection.py``), one for every vendor folder, and a vendor outside
  the package can declare its own the same way (the minimal provider info
  docs/ADDING_A_VENDOR.md shows is valid);
* every ``hook-class-name`` imports, is a hook of that ``connection-type`` and name;
* what the connection form gets (``GET /ui/connections/hook_meta``, built in-process by
  the api-server's own service) carries our fields, labels and hidden fields, and no
  default the secrets masker turned into ``***``;
* the form's fields and the hooks agree, by behaviour: setting any declared ``conn-field``
  changes what the hook builds (its transport, auth or calls), and every extra key a hook
  reads while building them is a declared ``conn-field``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import tomllib
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest
from airflow.sdk import BaseHook, Connection

from compliance_exports.core.errors import ExportError
from compliance_exports.core.vendor import builtin_vendor_names
from compliance_exports.provider_info import get_provider_info

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_DIR = Path(airflow.__file__).parent
INFO = get_provider_info()
CONNECTION_TYPES = {ct["connection-type"]: ct for ct in INFO["connection-types"]}
VENDORS = ("oleria", "veza", "sailpoint", "maxsight")

#: The least each vendor's connection needs to build a transport (Oleria has no default
#: token endpoint); every other field starts unset.
BASELINE_EXTRA: dict[str, dict[str, Any]] = {"oleria": {"token_url": "/oauth/token"}}
HTTPS_HOST = "https://tenant.example.test"
HTTP_HOST = "http://tenant.example.test"  # not loopback: refused unless allowed


def import_string(path: str) -> Any:
    """The object a dotted ``module.Name`` path names (what Airflow imports)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((AIRFLOW_DIR / name).read_text())
    return schema


def _distribution_name() -> str:
    name: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    return name


# --- schemas and names ---------------------------------------------------------------------


def test_provider_info_is_valid_for_airflow() -> None:
    jsonschema.Draft7Validator(_schema("provider_info.schema.json")).validate(INFO)
    yaml_schema = _schema("provider.yaml.schema.json")
    jsonschema.Draft7Validator(yaml_schema["properties"]["connection-types"]).validate(
        INFO["connection-types"]
    )
    behaviour_schema = jsonschema.Draft7Validator(
        _schema("customized_form_field_behaviours.schema.json")
    )
    for ct in INFO["connection-types"]:
        behaviour = ct["ui-field-behaviour"]
        behaviour_schema.validate(
            {  # as the ProvidersManager converts it before validating
                "hidden_fields": behaviour.get("hidden-fields", []),
                "relabeling": behaviour.get("relabeling", {}),
                "placeholders": behaviour.get("placeholders", {}),
            }
        )
    assert set(CONNECTION_TYPES) == set(VENDORS)


def test_package_name_is_the_distribution_and_the_entry_points_resolve() -> None:
    name = _distribution_name()
    assert INFO["package-name"] == name
    assert not name.startswith("apache-airflow"), "a name Airflow reserves for its providers"
    dist = importlib.metadata.distribution(name)
    assert INFO["versions"][0] == dist.version
    points = {(ep.group, ep.name): ep for ep in dist.entry_points}
    assert points[("apache_airflow_provider", "provider_info")].load() is get_provider_info
    plugin = points[("airflow.plugins", "compliance_exports")].load()
    [declared] = INFO["plugins"]
    assert import_string(declared["plugin-class"]) is plugin
    assert plugin.name == declared["name"]


def test_the_connection_types_are_the_vendor_folders_own() -> None:
    """Each built-in vendor folder declares its connection type (``connection.py``);
    the provider info lists exactly those, as they render themselves."""
    assert sorted(builtin_vendor_names()) == sorted(VENDORS)
    for vendor in VENDORS:
        module = importlib.import_module(f"compliance_exports.vendors.{vendor}.connection")
        assert CONNECTION_TYPES[vendor] == module.CONNECTION.provider_info()


def test_a_vendor_outside_the_package_can_declare_its_connection_type() -> None:
    """The minimal provider info docs/ADDING_A_VENDOR.md shows for a vendor package of
    its own (Acme's ``CONNECTION``) passes the schemas the ProvidersManager applies."""
    from tests.fifth_vendor.connection import CONNECTION

    info = {
        "package-name": "acme-exports",
        "name": "Acme exports",
        "description": "Acme audit log exports for compliance-exports.",
        "connection-types": [CONNECTION.provider_info()],
    }
    jsonschema.Draft7Validator(_schema("provider_info.schema.json")).validate(info)
    yaml_schema = _schema("provider.yaml.schema.json")
    jsonschema.Draft7Validator(yaml_schema["properties"]["connection-types"]).validate(
        info["connection-types"]
    )
    hook = import_string(CONNECTION.hook_class_name)
    assert (hook.conn_type, hook.hook_name) == ("acme", "Acme")


@pytest.mark.parametrize("conn_type", VENDORS)
def test_hook_class_is_the_hook_of_its_connection_type(conn_type: str) -> None:
    ct = CONNECTION_TYPES[conn_type]
    hook = import_string(ct["hook-class-name"])
    assert issubclass(hook, BaseHook)
    assert hook.conn_type == conn_type
    assert hook.hook_name == ct["hook-name"]
    assert callable(getattr(hook, "test_connection", None)), "the Test button needs it"
    modules = {m for h in INFO["hooks"] for m in h["python-modules"]}
    assert hook.__module__ in modules
    for module in modules:
        importlib.import_module(module)


def test_notifications_import() -> None:
    from airflow.sdk import BaseNotifier

    for path in INFO["notifications"]:
        assert issubclass(import_string(path), BaseNotifier)


# --- what the connection form gets ---------------------------------------------------------


def test_the_connection_form_gets_our_fields() -> None:
    """``GET /ui/connections/hook_meta`` in-process: the api-server's own service and
    response model (which redacts values of keys that look secret)."""
    from airflow.api_fastapi.core_api.datamodels.connections import ConnectionHookMetaData
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    served = {
        meta.connection_type: ConnectionHookMetaData.model_validate(meta.model_dump())
        for meta in HookMetaService.hook_meta_data()
    }
    for conn_type, ct in CONNECTION_TYPES.items():
        meta = served[conn_type]
        assert meta.hook_name == ct["hook-name"]
        assert meta.hook_class_name == ct["hook-class-name"]
        fields = meta.extra_fields or {}
        assert set(fields) == set(ct["conn-fields"]), "extras keep their plain names"
        for name, spec in ct["conn-fields"].items():
            assert fields[name]["schema"]["title"] == spec["label"]
            assert fields[name]["value"] == spec["schema"].get("default")  # never "***"
        standard = meta.standard_fields
        assert standard is not None
        assert standard.host is not None
        assert standard.host.title == "Base URL"
        behaviour = ct["ui-field-behaviour"]
        for name in ("schema", "port", "login"):
            field = getattr(standard, "url_schema" if name == "schema" else name)
            hidden = name in behaviour["hidden-fields"]
            assert (field is not None and field.hidden) == hidden, name


# --- the form's fields and the hooks agree -------------------------------------------------


class _Recording(dict[str, Any]):
    """A dict that notes every key looked up."""

    def __init__(self, data: dict[str, Any], reads: set[str]) -> None:
        super().__init__(data)
        self.reads = reads

    def __getitem__(self, key: str) -> Any:
        self.reads.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.reads.add(str(key))
        return super().__contains__(key)


class _RecordingConnection:
    """A connection whose ``extra_dejson`` notes the keys read."""

    def __init__(self, conn: Connection, reads: set[str]) -> None:
        self._conn = conn
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @property
    def extra_dejson(self) -> _Recording:
        return _Recording(dict(self._conn.extra_dejson), self._reads)


def _recording_hook(hook_cls: type, reads: set[str]) -> Any:
    """An instance of ``hook_cls`` whose ``extra`` (the copy it keeps) notes reads too."""

    class Recording(hook_cls):  # type: ignore[misc, valid-type]
        @property
        def extra(self) -> dict[str, Any]:
            value: dict[str, Any] = self.__dict__["_recorded_extra"]
            return value

        @extra.setter
        def extra(self, value: dict[str, Any]) -> None:
            self.__dict__["_recorded_extra"] = _Recording(dict(value), reads)

    return Recording(conn_id="probe")


def _calls(hook: Any) -> list[Any]:
    """What the hook asks of the vendor: each declared call, or why it has none."""
    made: list[Any] = []
    for build in (
        hook.probe_call,
        lambda: hook.status_call("job-1"),
        lambda: hook.submit_call({}),
        lambda: hook.cancel_call("job-1"),
    ):
        try:
            call = build()
        except (NotImplementedError, ExportError) as exc:
            made.append(type(exc).__name__)
        else:
            made.append((call.method, call.path, repr(call.params)))
    return made


def _built(conn_type: str, extra: dict[str, Any], host: str, reads: set[str]) -> Any:
    """What the hook builds from a connection: its transport's settings and its calls, or
    the refusal naming the field."""
    hook = _recording_hook(import_string(CONNECTION_TYPES[conn_type]["hook-class-name"]), reads)
    conn = Connection(
        conn_id="probe",
        conn_type=conn_type,
        host=host,
        login="client-id",
        password="client-secret",
        extra=json.dumps(extra),
    )
    try:
        transport = hook._build_transport(_RecordingConnection(conn, reads))
    except ExportError as exc:
        return ("refused", str(exc))
    try:
        auth = {k: repr(v) for k, v in vars(transport.auth).items() if k not in {"cache", "_clock"}}
        return (
            transport.base_url,
            transport.timeout,
            transport.policy,
            sorted(auth.items()),
            _calls(hook),
        )
    finally:
        transport.close()


def _outcome(conn_type: str, extra: dict[str, Any], reads: set[str]) -> tuple[Any, Any]:
    """Built over an https host and over a plain-http (non-loopback) one."""
    return (
        _built(conn_type, extra, HTTPS_HOST, reads),
        _built(conn_type, extra, HTTP_HOST, reads),
    )


def _probe_value(spec: dict[str, Any], baseline: Any) -> Any:
    """A value of the field's type that differs from the baseline and any default."""
    schema = spec["schema"]
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v not in (baseline, schema.get("default")))
    if "boolean" in types:
        return not (baseline or schema.get("default") or False)
    if "integer" in types:
        return 3
    if "number" in types:
        return 7.5
    return "probe-value"


@pytest.mark.parametrize("conn_type", VENDORS)
def test_every_conn_field_is_honoured_by_the_hook(conn_type: str) -> None:
    """Each declared field, set alone (as the form stores it: the plain key, a JSON value
    of its schema's type), changes what the hook builds."""
    baseline_extra = BASELINE_EXTRA.get(conn_type, {})
    baseline = _outcome(conn_type, baseline_extra, set())
    ignored = []
    for name, spec in CONNECTION_TYPES[conn_type]["conn-fields"].items():
        value = _probe_value(spec, baseline_extra.get(name))
        if _outcome(conn_type, {**baseline_extra, name: value}, set()) == baseline:
            ignored.append(f"{name}={value!r}")
    assert not ignored, f"the {conn_type} hook ignores its form's fields {ignored}"


@pytest.mark.parametrize("conn_type", VENDORS)
def test_every_extra_the_hook_reads_is_a_form_field(conn_type: str) -> None:
    """The form hides the raw extra JSON editor's purpose: whatever the hook reads must
    have a field of its own (or the form could not set it)."""
    reads: set[str] = set()
    declared = CONNECTION_TYPES[conn_type]["conn-fields"]
    extra = {**BASELINE_EXTRA.get(conn_type, {})}
    _outcome(conn_type, extra, reads)
    for name, spec in declared.items():  # every field set: the paths behind each one
        extra[name] = _probe_value(spec, None)
    extra.pop("ca_bundle")  # set, it refuses before the rest is read
    _outcome(conn_type, extra, reads)
    assert reads, "nothing was read: the recording misses the hook's extra"
    assert reads <= set(declared), f"read but not in the form: {sorted(reads - set(declared))}"
