"""Check the SailPoint simulator's answers against tests/openapi/sailpoint-reports.yaml.

The simulator logs its answers (``GET /_sim/responses``: method, path, status,
Content-Type, the headers a client acts on, the JSON body). :func:`problems_of` hands each
answer to openapi-core (``OpenAPI.validate_response``), which finds its operation by
method and path and its declared response by status (exact code, then ``5XX``, then
``default``), and checks the Content-Type against the declared media types, a JSON body
against its schema (OAS 3.0 formats included) and the declared response headers. One
check openapi-core does not make is added here: a response declared without content must
have no JSON body. A path the document does not declare may only be answered 404 or 405
(the tenant has no such route).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

DOCUMENT = Path(__file__).with_name("sailpoint-reports.yaml")
#: the document's server with its default tenant: answers are checked as if served there
SERVER = "https://example.api.identitynow.com"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
NO_ROUTE_STATUSES = (404, 405)
FILE_BODY = b"(file body, not logged)"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    responses: Mapping[str, Any]


def load_document(path: Path = DOCUMENT) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@functools.cache
def _api() -> OpenAPI:
    return OpenAPI.from_dict(load_document())


def resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points to (no cycles here)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return resolve(_pointer(root, node["$ref"]), root)
        return {key: resolve(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, root) for item in node]
    return node


def _pointer(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


def operations(document: Mapping[str, Any]) -> list[Operation]:
    """Every (method, path) of ``document``, its responses resolved."""
    found = []
    for template, item in document["paths"].items():
        resolved = resolve(item, document)
        for method in METHODS:
            if method in resolved:
                responses = resolved[method]["responses"]
                found.append(Operation(method.upper(), template, _pattern(template), responses))
    return found


@functools.cache
def _default_operations() -> tuple[Operation, ...]:
    return tuple(operations(load_document()))


def find_operation(ops: Iterable[Operation], method: str, path: str) -> Operation | None:
    return next((op for op in ops if op.method == method and op.pattern.match(path)), None)


def declared_response(op: Operation, status: int) -> Mapping[str, Any] | None:
    for key in (str(status), f"{status // 100}XX", "default"):
        if key in op.responses:
            response: Mapping[str, Any] = op.responses[key]
            return response
    return None


def problems_of(entry: Mapping[str, Any]) -> list[str]:
    """What is wrong with one logged answer (empty: it is as the document declares)."""
    method, path, status = entry["method"], entry["path"], int(entry["status"])
    where = f"{method} {path} -> {status}"
    if entry.get("truncated"):
        return [f"{where}: the JSON body is missing, too large or not JSON"]
    media = (entry.get("content_type") or "").split(";")[0].strip()
    if entry.get("has_json_body"):
        body = json.dumps(entry["json_body"]).encode()
    else:  # a file's bytes are not logged: a stand-in, so its media type is still checked
        body = FILE_BODY if media and media != "application/json" else b""
    request = MockRequest(SERVER, method, path)
    response = MockResponse(body, status, dict(entry.get("headers") or {}), media)
    try:
        _api().validate_response(request, response)
    except PathError:
        if status in NO_ROUTE_STATUSES:
            return []
        return [f"{where}: no operation of the document serves this path"]
    except ResponseNotFound:
        return [f"{where}: status {status} is not declared for {method} {path}"]
    except OpenAPIError as error:
        return [f"{where}: {problem}" for problem in _explain(error)]
    op = find_operation(_default_operations(), method, path)
    declared = declared_response(op, status) if op else None
    if declared is not None and not declared.get("content") and entry.get("has_json_body"):
        return [f"{where}: a JSON body where none is declared"]
    return []


def _explain(error: OpenAPIError) -> list[str]:
    """openapi-core's finding, with each schema error's place in the body."""
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if not schema_errors:
        return [str(error)]
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or 'body'}: {e.message}" for e in schema_errors
    ]


def logged_answers(base_url: str, *, clear: bool = True) -> dict[str, Any]:
    """The simulator's response log (``{"dropped": n, "responses": [...]}``), then cleared."""
    with httpx.Client(base_url=base_url, timeout=10) as admin:
        log: dict[str, Any] = admin.get("/_sim/responses").raise_for_status().json()
        if clear:
            admin.delete("/_sim/responses").raise_for_status()
    return log


def answer_problems(base_url: str) -> list[str]:
    """Every problem of the answers the simulator at ``base_url`` logged since last asked."""
    log = logged_answers(base_url)
    return [problem for entry in log["responses"] for problem in problems_of(entry)]


def assert_answers_valid(base_url: str) -> None:
    """Fail (AssertionError) when an answer logged since the last check breaks the document."""
    problems = answer_problems(base_url)
    assert not problems, "SailPoint simulator answers not as documented:\n" + "\n".join(problems)
