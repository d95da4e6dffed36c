"""Check the SailPoint simulator's answers against tests/openapi/sailpoint-reports.yaml.

The simulator logs its answers (``GET /_sim/responses``: method, path, status,
Content-Type, JSON body). :func:`problems_of` finds each answer's operation in the
document by method and path, its declared response by status (exact code, then ``5XX``),
and checks: a JSON body against the response schema (``OAS30Validator``, with the OAS 3.0
format checker); any other body only by its Content-Type, which must be one the response
declares; a response declared without content must have no JSON body. A path the
document does not declare may only be answered 404 or 405 (the tenant has no such route).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

DOCUMENT = Path(__file__).with_name("sailpoint-reports.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
NO_ROUTE_STATUSES = (404, 405)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    responses: Mapping[str, Any]


def load_document(path: Path = DOCUMENT) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


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


def problems_of(entry: Mapping[str, Any], ops: Iterable[Operation] | None = None) -> list[str]:
    """What is wrong with one logged answer (empty: it is as the document declares)."""
    ops = _default_operations() if ops is None else ops
    method, path, status = entry["method"], entry["path"], int(entry["status"])
    where = f"{method} {path} -> {status}"
    op = find_operation(ops, method, path)
    if op is None:
        if status in NO_ROUTE_STATUSES:
            return []
        return [f"{where}: no operation of the document serves this path"]
    response = declared_response(op, status)
    if response is None:
        return [f"{where}: status {status} is not declared for {op.method} {op.template}"]
    return [f"{where}: {p}" for p in _content_problems(entry, response.get("content") or {})]


def _content_problems(entry: Mapping[str, Any], content: Mapping[str, Any]) -> list[str]:
    media = (entry.get("content_type") or "").split(";")[0].strip()
    if not content:
        return ["a JSON body where none is declared"] if entry.get("has_json_body") else []
    if media not in content:
        return [f"Content-Type {media or 'none'!r} is not one of {sorted(content)}"]
    if media != "application/json":
        return []
    if not entry.get("has_json_body") or entry.get("truncated"):
        return ["the JSON body is missing, too large or not JSON"]
    validator = OAS30Validator(content[media]["schema"], format_checker=oas30_format_checker)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or 'body'}: {error.message}"
        for error in validator.iter_errors(entry["json_body"])
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
