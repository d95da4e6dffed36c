"""The client half of the golden requests (issue #13): registry entry -> the same request.

``tests/golden/<vendor>/*.json`` are requests transcribed from the vendors' documentation
(format per vendor: tests/golden/README.md). The simulators' tests send them and check
they are accepted; here, for every golden request the client is meant to send, a
registry entry is written that should produce it, and the client builds its request the
way a DAG run does:

1. the entries are parsed with :func:`parse_registry` and turned into the real DAGs by
   :func:`build_dag` (nothing is run);
2. a slice is planned with :func:`plan_items` for a chosen day;
3. the vendor operator is constructed from the mapped task's own ``partial_kwargs``
   (``static_kwargs`` / ``query_kwargs`` + lake + task defaults, exactly what the DAG
   passes) and the planned slice put through the task's own expand mapping
   (``job_export_kwargs`` / ``export_kwargs`` / ``pdf_batch_kwargs``);
4. ``build_request()`` (Maxsight: ``validate()`` and its query) is turned into the
   hook's :class:`ApiCall` (``submit_call``, ``status_call``, ``download_call``,
   ``cancel_call``; Maxsight ``export_call``). The hook gets its connection extra as
   ``_build_transport`` would set it; no connection, no network.

Equivalence (what :func:`differences` checks):

* same method; same path, the golden placeholders (``{id}``, ``{export_id}``,
  ``{taskResultId}``) filled with the one job id the client was given;
* the same query parameters as a multiset of ``(key, value)`` pairs, as httpx encodes
  them (no doc makes their order meaningful). Maxsight ``range_start`` / ``range_end``
  are compared as instants at millisecond precision (the doc says "ISO-8601 UTC", not a
  precision; the slice is planned for the golden file's own day, 2026-11-20 UTC);
* the same JSON body, field by field (Oleria's ``filterBy`` as a multiset: the doc
  says AND-combined; ``sortBy`` in order: sort keys rank);
* headers are the auth classes' business, not the ApiCall's: only the golden headers
  other than ``Authorization`` / ``apikey`` / ``Content-Type`` / ``Accept`` are
  compared (Veza's ``Accept-Encoding: identity`` on the download).

A parameter or field on one side only is equivalent when it carries the documented
default (:data:`DOC_DEFAULTS`: Maxsight ``file_type=csv``, ``locale=en``; SailPoint
``auditable=false``, ``completed=false``). Any other difference fails, unless the case
declares it in ``tolerated`` with the reason, and only for a field the doc calls
optional (:data:`DOC_OPTIONAL`); a declared tolerance that no longer occurs fails too,
so the list below is exactly the set of differences between client and doc.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from compliance_exports.core.http import ApiCall
from compliance_exports.core.states import ExportPhase, ExportState
from compliance_exports.registry import ExportEntry, Registry, RegistryError, parse_registry
from compliance_exports.runs import iso_ms

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
#: the job id every poll, download and cancel is built for (fills the path placeholders)
JOB_ID = "2c91808a7813090a017814121919ecca"
PLACEHOLDERS = ("{id}", "{export_id}", "{taskResultId}")
#: the day of the Maxsight golden files' literal range bounds
MAXSIGHT_DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
AUTH_HEADERS = frozenset({"authorization", "apikey", "content-type", "accept"})

#: fields/parameters the documentation (VENDOR_APIS.md; SailPoint's OpenAPI) calls optional
DOC_OPTIONAL: Mapping[str, frozenset[str]] = {
    "oleria": frozenset(),  # body {context, params: {filterBy, sortBy}}: all of it sent
    "veza": frozenset(
        {"previous_certification_id", "order_by", "filter", "mutable_filter", "title"}
    ),
    "sailpoint": frozenset({"name", "auditable", "completed"}),  # `required: false`
    "maxsight": frozenset(
        {
            "range_start",
            "range_end",
            "auditee_id",
            "event_type",
            "sub_type",
            "system_source",
            "file_type",
            "locale",
            "timezone",
        }
    ),  # "Query (all optional, DOC)"; metadata[KEY] too
}
#: documented defaults: sending one, or leaving it out, asks the same
DOC_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "maxsight": {"file_type": "csv", "locale": "en"},  # "csv (default)", "(default en)"
    "sailpoint": {"auditable": "false", "completed": "false"},  # spec defaults
}
MAXSIGHT_INSTANTS = ("range_start", "range_end")

# Reasons shared by several cases -------------------------------------------------------
WINDOWED = (
    "every Maxsight export is windowed (kind: windowed only): the client always bounds it "
    "to the slice's day, [00:00, 23:59:59.999] UTC; the golden file asks for no range"
)
CSV_IN_UTC = (
    "the CSV is always asked with timezone=UTC and locale=en (maxsight/spec.py add_tasks: "
    "it is both the Parquet source and the PDF counter, so its timestamps must be "
    "machine-readable); the golden file leaves timezone out (no documented default)"
)
NO_NAME = (
    "the optional `name` (the file's preferred name) is never sent: SailPointHook."
    "download_call adds it only when the options carry one, and SailPointReportOperator."
    "download_options() carries file_format only; SailPoint then names the file after "
    "the report"
)


@dataclass(frozen=True)
class Case:
    """One golden file and the registry entry that should produce it."""

    golden: str  # "<vendor>/<file>.json"
    entry: Mapping[str, Any]  # the registry entry, without vendor (added) and name
    call: str  # submit | status | download | cancel | csv | pdf
    conn_extra: Mapping[str, Any] = field(default_factory=dict)
    tolerated: Mapping[str, str] = field(default_factory=dict)  # difference -> why

    @property
    def vendor(self) -> str:
        return self.golden.split("/", 1)[0]

    @property
    def name(self) -> str:
        stem = self.golden.removesuffix(".json").replace("/", "_").replace("-", "_")
        return f"golden_{stem}"


def _oleria(golden: str, call: str = "submit", **params: Any) -> Case:
    block = {"context": "accessInventoryIdentitiesV2", **params}
    return Case(f"oleria/{golden}", {"kind": "snapshot", "oleria": block}, call)


def _filter(data_type: str, name: str, op: str, *values: Any) -> dict[str, Any]:
    return {"dataType": data_type, "field": name, "filterType": op, "values": list(values)}


def _veza(golden: str, call: str = "submit", **params: Any) -> Case:
    block = {"certification_id": "cert-2026-q3", **params}
    return Case(f"veza/{golden}", {"kind": "snapshot", "veza": block}, call)


def _sailpoint(
    golden: str,
    report_type: str,
    arguments: Mapping[str, Any],
    call: str = "submit",
    *,
    file_format: str = "csv",
    layout: str = "v3",
    tolerated: Mapping[str, str] | None = None,
) -> Case:
    block = {"report_type": report_type, "arguments": dict(arguments), "file_format": file_format}
    return Case(
        f"sailpoint/{golden}",
        {"kind": "snapshot", "sailpoint": block, "conn_id": f"sailpoint_{layout}"},
        call,
        conn_extra={"api_layout": layout},
        tolerated=tolerated or {},
    )


def _maxsight(golden: str, call: str, tolerated: Mapping[str, str], **params: Any) -> Case:
    return Case(
        f"maxsight/{golden}", {"kind": "windowed", "maxsight": params}, call, tolerated=tolerated
    )


UNBOUNDED_CSV = {"query:range_start": WINDOWED, "query:range_end": WINDOWED}
UNBOUNDED_CSV |= {"query:timezone": CSV_IN_UTC}
UUID = "3f1c2b7e-8a4d-4e29-9b61-0c5d7a2e4f10"

CASES: tuple[Case, ...] = (
    # Oleria: POST /v1/downloads from a snapshot entry's filter_by / sort_by; the poll.
    _oleria("create_plain.json"),
    _oleria("filter_boolean_eq.json", filter_by=[_filter("boolean", "isAdmin", "eq", True)]),
    _oleria(
        "filter_enum_in.json",
        filter_by=[_filter("enum", "identityType", "in", "human", "serviceAccount")],
    ),
    _oleria(
        "filter_number_between.json",
        filter_by=[_filter("number", "dormantDays", "between", 30, 90)],
    ),
    _oleria(
        "filter_string_in.json",
        filter_by=[_filter("string", "department", "in", "Finance", "Legal")],
    ),
    _oleria("filter_string_is_null.json", filter_by=[_filter("string", "department", "isNull")]),
    _oleria(
        "filter_timestamp_between.json",
        filter_by=[
            _filter(
                "timestamp", "createdAt", "between", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
            )
        ],
    ),
    _oleria(
        "filter_timestamp_is_not_null.json",
        filter_by=[_filter("timestamp", "lastLoginAt", "isNotNull")],
    ),
    _oleria(
        "filter_timestamp_last.json", filter_by=[_filter("timestamp", "createdAt", "last", "7d")]
    ),
    _oleria(
        "filters_and_sort.json",
        filter_by=[
            _filter("enum", "identityType", "eq", "human"),
            _filter("timestamp", "lastLoginAt", "last", "24h"),
            _filter("number", "assignedRolesCount", "gte", 10),
        ],
        sort_by=[{"field": "lastLoginAt", "sortType": "desc"}],
    ),
    _oleria(
        "sort.json",
        sort_by=[
            {"field": "createdAt", "sortType": "desc"},
            {"field": "department", "sortType": "asc"},
        ],
    ),
    _oleria("poll.json", call="status"),
    # Veza: access_review:create from the registry block (and the form's format), status,
    # download.
    _veza("create_csv.json", format="csv"),
    _veza("create_diff.json", previous_certification_id="cert-2026-q2"),
    _veza(
        "create_filtered.json",
        filter='source.is_active eq true and destination.type eq "S3Bucket"',
        mutable_filter='decision eq "RESULT_DECISION_ACCEPTED"',
        order_by="source.name ASC",
    ),
    _veza("create_xlsx_title.json", format="xlsx", title="Q3 2026 access review"),
    _veza("status.json", call="status"),
    _veza("download.json", call="download"),
    # SailPoint: reports run under both layouts, the result poll, the file, the cancel.
    _sailpoint(
        "run-accounts.json",
        "ACCOUNTS",
        {"application": "2c9180897e7742b2017e781782f705b9", "sourceName": "Active Directory"},
    ),
    _sailpoint("run-identities-details.json", "IDENTITIES_DETAILS", {"correlatedOnly": True}),
    _sailpoint(
        "run-search-export.json",
        "SEARCH_EXPORT",
        {
            "query": "name:a*",
            "indices": ["identities"],
            "columns": "displayName,firstName,lastName,email",
            "sort": ["displayName", "-created"],
        },
    ),
    _sailpoint(
        "run-uncorrelated-accounts.json",
        "UNCORRELATED_ACCOUNTS",
        {"selectedFormats": ["CSV", "PDF"]},
    ),
    _sailpoint(
        "run-unified-layout.json", "IDENTITIES", {"correlatedOnly": False}, layout="unified"
    ),
    _sailpoint("result.json", "IDENTITIES_DETAILS", {"correlatedOnly": True}, "status"),
    _sailpoint(
        "file-csv.json",
        "IDENTITIES_DETAILS",
        {"correlatedOnly": True},
        "download",
        tolerated={"query:name": NO_NAME},
    ),
    _sailpoint(
        "file-pdf.json",
        "IDENTITIES_DETAILS",
        {"correlatedOnly": True},
        "download",
        file_format="pdf",
        tolerated={"query:name": NO_NAME},
    ),
    _sailpoint("cancel.json", "IDENTITIES_DETAILS", {"correlatedOnly": True}, "cancel"),
    # Maxsight: the slice's CSV (fetch_csv) and its PDF (fetch_pdfs, one window: the day).
    _maxsight("export_with_apikey.json", "csv", UNBOUNDED_CSV),
    _maxsight(
        "event_type_sample.json", "csv", UNBOUNDED_CSV, filters={"event_type": ["assessment"]}
    ),
    _maxsight(
        "event_type_repeated_keys.json", "csv", UNBOUNDED_CSV, filters={"event_type": ["a", "b"]}
    ),
    _maxsight("metadata_entity_id.json", "csv", UNBOUNDED_CSV, metadata={"entity_id": UUID}),
    _maxsight("file_type_pdf.json", "pdf", {}, file_types=["csv", "pdf"]),
    _maxsight(
        "range_timezone_locale.json",
        "pdf",
        {
            "query:file_type": (
                "the registry's maxsight.timezone reaches only the PDFs (docs/REGISTRY.md: "
                "'how PDFs render timestamps; the CSV is always fetched in UTC/English'), "
                "so a CSV rendered in Europe/London is never "
                "sent: the golden file is matched by the client's PDF request"
            )
        },
        file_types=["csv", "pdf"],
        timezone="Europe/London",
        locale="en",
    ),
)

SKIPPED: Mapping[str, str] = {
    "oleria/token.json": "token request: sent by core.auth.OAuth2ClientCredentials, not a hook",
    "oleria/token_audience.json": "token request (with audience): core.auth, not a hook",
    "sailpoint/token.json": "token request: sent by core.auth.OAuth2ClientCredentials",
    **{
        f"veza/{name}": "a deliberately wrong variant (refused with 400): the registry "
        "refuses it, see test_the_registry_refuses_the_refused_veza_variants"
        for name in (
            "refused_filter_operator.json",
            "refused_format_1.json",
            "refused_title_31.json",
            "refused_title_on_csv.json",
        )
    },
}


# --- the client's request, built as a DAG run builds it --------------------------------


def _document(cases: Sequence[Case]) -> dict[str, Any]:
    return {
        "defaults": {"schedule": "0 0 * * *", "timezone": "UTC", "lake": {"sse": "AES256"}},
        "exports": {case.name: {"vendor": case.vendor, **case.entry} for case in cases},
    }


@functools.cache
def _registry_and_dags() -> tuple[Registry, dict[str, Any]]:
    from compliance_exports.dag_factory import build_dag

    registry = parse_registry(_document(CASES), source="test_golden_requests")
    dags = {dag_id: build_dag(dag_id, entries) for dag_id, entries in registry.by_dag().items()}
    return registry, dags


def _context(entry: ExportEntry) -> dict[str, Any]:
    """A scheduled run's context: the golden day (windowed) or yesterday (snapshot)."""
    if entry.kind.value == "windowed":
        start = MAXSIGHT_DAY
    else:  # a snapshot is taken only for an interval that ended within snapshot_grace
        start = dt.datetime.combine(
            dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1), dt.time(), dt.UTC
        )
    return {
        "data_interval_start": start,
        "data_interval_end": start + dt.timedelta(days=1),
        "params": {},
    }


def _expand(task: Any, value: Mapping[str, Any]) -> dict[str, Any]:
    """The mapped task's own ``.map(...)`` functions applied to ``value`` (one XCom item)."""
    mapped: Any = task.expand_input.value
    functions: Sequence[Callable[[Any], Any]] = mapped.callables
    for function in functions:
        value = function(value)
    return dict(value)


def _operator(case: Case, task_name: str, item: Mapping[str, Any] | None = None) -> Any:
    """The operator the DAG's mapped task ``task_name`` runs for the case's planned slice."""
    from compliance_exports.dag_factory import plan_items

    registry, dags = _registry_and_dags()
    entry = registry.get(case.name)
    known = [e.name for e in registry.by_dag()[entry.dag_id]]
    [planned] = plan_items(entry, known, _context(entry))
    task = dags[entry.dag_id].task_dict[f"{entry.name}.{task_name}"]
    kwargs = {**task.partial_kwargs, **_expand(task, planned if item is None else item)}
    return task.operator_class(task_id=f"{entry.name}_{task_name}", **kwargs)


def _maxsight_pdf_call(case: Case) -> ApiCall:
    """The PDF of the slice's only window (a day of few events: one window, the day)."""
    from compliance_exports.dag_factory import plan_items
    from compliance_exports.vendors.maxsight.audit import SPLIT_DIMENSIONS, Window
    from compliance_exports.vendors.maxsight.audit import plan_pdf_windows as plan_windows
    from compliance_exports.vendors.maxsight.audit.window import parse_ms
    from compliance_exports.vendors.maxsight.spec import MAX_MAPPED_TASKS, batch_windows

    registry, _ = _registry_and_dags()
    entry = registry.get(case.name)
    [planned] = plan_items(entry, [entry.name], _context(entry))
    start, end = (parse_ms(planned["request"][k]) for k in ("range_start", "range_end"))
    windows = [w.to_dict() for w in plan_windows([], start, end)]
    [batch] = batch_windows([(planned["day"], windows)], MAX_MAPPED_TASKS)
    operator = _operator(case, "fetch_pdfs", batch)
    [window] = [Window.from_dict(w) for w in operator.windows]
    # what MaxsightAuditPdfsToS3Operator._fetch_window does before its fetch
    base = {dim: tuple(getattr(operator, dim)) for dim in SPLIT_DIMENSIONS}
    bounds = window.to_dict()
    operator.range_start, operator.range_end = bounds["start"], bounds["end"]
    for dim in SPLIT_DIMENSIONS:
        setattr(operator, dim, tuple(window.filters.get(dim, base[dim])))
    operator.validate()
    call: ApiCall = operator.hook.export_call(operator._query)
    return call


def client_call(case: Case) -> ApiCall:
    """The ApiCall the client makes for ``case`` (no connection, no network)."""
    if case.call == "pdf":
        return _maxsight_pdf_call(case)
    if case.call == "csv":
        operator = _operator(case, "fetch_csv")
        operator.validate()
        call: ApiCall = operator.hook.export_call(operator._query)
        return call
    operator = _operator(case, "export")
    request = operator.build_request()
    hook = operator.hook
    hook.extra = dict(case.conn_extra)  # as ExportHook._build_transport sets it
    if case.call == "submit":
        call = hook.submit_call(request)
    elif case.call == "status":
        call = hook.status_call(JOB_ID)
    elif case.call == "cancel":
        call = hook.cancel_call(JOB_ID)
    elif case.call == "download":
        state = ExportState(JOB_ID, ExportPhase.SUCCEEDED, "FINISHED")
        call = hook.download_call(state, operator.download_options())
    else:  # pragma: no cover - a typo in CASES
        raise AssertionError(f"unknown call {case.call!r}")
    return call


# --- the golden request, normalised ---------------------------------------------------


def golden(case: Case) -> dict[str, Any]:
    return dict(json.loads((GOLDEN / case.golden).read_text(encoding="utf-8")))


def _golden_path(data: Mapping[str, Any]) -> str:
    path = str(data["path"])
    for placeholder in PLACEHOLDERS:
        path = path.replace(placeholder, JOB_ID)
    return path


def _golden_query(vendor: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    query = data.get("query") or []
    pairs = list(query.items()) if isinstance(query, Mapping) else [tuple(p) for p in query]
    return _normalised(vendor, httpx.QueryParams(pairs).multi_items())


def _golden_body(vendor: str, data: Mapping[str, Any]) -> Any:
    return data.get("body") if vendor == "veza" else data.get("json")


def _client_query(vendor: str, call: ApiCall) -> list[tuple[str, str]]:
    params: Any = call.params or []
    return _normalised(vendor, httpx.QueryParams(params).multi_items())


def _normalised(vendor: str, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if vendor != "maxsight":
        return list(pairs)
    return [(k, _instant_ms(v) if k in MAXSIGHT_INSTANTS else v) for k, v in pairs]


def _instant_ms(text: str) -> str:
    """The millisecond an ISO-8601 instant falls in (``...59.999999Z`` -> ``...59.999Z``)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return f"{text} (no offset)"
    return iso_ms(moment.replace(microsecond=moment.microsecond // 1000 * 1000))


# --- equivalence ---------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _body_differences(vendor: str, doc: Any, client: Any) -> dict[str, str]:
    if doc is None or client is None:
        same = doc is None and client is None
        return {} if same else {"json": f"golden {_dumps(doc)} / client {_dumps(client)}"}
    out: dict[str, str] = {}
    for key in sorted(set(doc) | set(client)):
        left, right = doc.get(key, "<absent>"), client.get(key, "<absent>")
        if vendor == "oleria" and key == "params" and isinstance(left, dict):
            right = dict(right) if isinstance(right, dict) else right
            if isinstance(right, dict):  # filterBy is AND-combined: order is not meaningful
                for side in (left, right):
                    side["filterBy"] = sorted(side.get("filterBy", []), key=_dumps)
        if _dumps(left) != _dumps(right):
            out[f"json:{key}"] = f"golden {_dumps(left)} / client {_dumps(right)}"
    return out


def _query_differences(
    vendor: str, doc: Sequence[tuple[str, str]], client: Sequence[tuple[str, str]]
) -> dict[str, str]:
    defaults = DOC_DEFAULTS.get(vendor, {})
    out: dict[str, str] = {}
    for key in sorted({k for k, _ in doc} | {k for k, _ in client}):
        left = Counter(v for k, v in doc if k == key)
        right = Counter(v for k, v in client if k == key)
        if left == right:
            continue
        one_sided = {len(left), len(right)} == {0, 1}
        if one_sided and key in defaults and (left or right) == Counter([defaults[key]]):
            continue  # one side sends the documented default, the other leaves it out
        out[f"query:{key}"] = (
            f"golden {sorted(left.elements())} / client {sorted(right.elements())}"
        )
    return out


def differences(case: Case, call: ApiCall) -> dict[str, str]:
    """Every way the client's ``call`` differs from the case's golden request."""
    data = golden(case)
    out: dict[str, str] = {}
    if call.method.upper() != str(data["method"]).upper():
        out["method"] = f"golden {data['method']} / client {call.method}"
    if call.path != _golden_path(data):
        out["path"] = f"golden {_golden_path(data)} / client {call.path}"
    out |= _query_differences(
        case.vendor, _golden_query(case.vendor, data), _client_query(case.vendor, call)
    )
    out |= _body_differences(case.vendor, _golden_body(case.vendor, data), call.json)
    for name, value in (data.get("headers") or {}).items():
        if name.lower() in AUTH_HEADERS:
            continue
        sent = {k.lower(): v for k, v in call.headers.items()}.get(name.lower())
        if sent != value:
            out[f"header:{name}"] = f"golden {value!r} / client {sent!r}"
    return out


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.golden for c in CASES])
def test_the_client_sends_the_documented_request(case: Case) -> None:
    call = client_call(case)
    found = differences(case, call)
    unexpected = {k: v for k, v in found.items() if k not in case.tolerated}
    stale = sorted(set(case.tolerated) - set(found))
    sent = f"client: {call.method} {call.path} params={call.params!r} json={_dumps(call.json)}"
    assert not unexpected, (
        f"{case.golden}: the client's request differs from the documented one:\n"
        + "\n".join(f"  {where}: {text}" for where, text in unexpected.items())
        + f"\n  {sent}"
    )
    assert not stale, f"{case.golden}: tolerated differences no longer occur: {stale}; {sent}"


@pytest.mark.parametrize("case", [c for c in CASES if c.tolerated], ids=lambda c: c.golden)
def test_tolerated_differences_are_on_documented_optional_fields(case: Case) -> None:
    for where, reason in case.tolerated.items():
        kind, _, name = where.partition(":")
        assert kind in ("query", "json"), f"{case.golden}: {where} is not a field or parameter"
        assert name in DOC_OPTIONAL[case.vendor], (
            f"{case.golden}: {name!r} is not optional in the doc; a difference on it is a "
            f"misreading, not a tolerance ({reason})"
        )
        assert reason.strip(), f"{case.golden}: {where} needs a reason"


def test_every_client_side_golden_file_is_covered_or_skipped_with_a_reason() -> None:
    on_disk = {str(p.relative_to(GOLDEN)) for p in GOLDEN.glob("*/*.json")}
    covered = [c.golden for c in CASES]
    assert len(covered) == len(set(covered)), "a golden file has two client cases"
    assert not set(covered) & set(SKIPPED), "a golden file is both covered and skipped"
    assert all(reason.strip() for reason in SKIPPED.values())
    missing = sorted(on_disk - set(covered) - set(SKIPPED))
    assert not missing, (
        f"golden files without a client case (add one to CASES or SKIPPED): {missing}"
    )
    gone = sorted((set(covered) | set(SKIPPED)) - on_disk)
    assert not gone, f"cases for golden files that do not exist: {gone}"


REFUSED = sorted(p.name for p in (GOLDEN / "veza").glob("refused_*.json"))
FORMAT_NAMES = {0: "csv", 6: "xlsx"}


@pytest.mark.parametrize("name", REFUSED)
def test_the_registry_refuses_the_refused_veza_variants(name: str) -> None:
    """The wrong variants never reach Veza: the registry entry is refused, naming the field."""
    data = json.loads((GOLDEN / "veza" / name).read_text(encoding="utf-8"))
    body = dict(data["body"])
    fmt = body.pop("format")
    block = {"format": FORMAT_NAMES.get(fmt, fmt), **body}
    document = {
        "defaults": {"schedule": "0 0 * * *"},
        "exports": {"refused": {"vendor": "veza", "kind": "snapshot", "veza": block}},
    }
    with pytest.raises(RegistryError) as refused:
        parse_registry(document)
    assert f"exports.refused.veza.{data['expect']['field']}" in str(refused.value)
