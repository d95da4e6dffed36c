"""The simulators are independent readings of the vendor docs: they import no client code.

A simulator that imported the client (its report table, its query model, its parsers)
would agree with the client by construction, and every test against it would prove
nothing about the vendor docs. This guard parses every module under include/simulators/
and fails on any import of ``compliance_exports`` or of anything under src/, naming
the file and the line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIMULATORS = REPO / "include" / "simulators"
SRC = REPO / "src"


def client_roots() -> frozenset[str]:
    """Top-level names the client code is importable by: ``src`` and what it holds."""
    roots = {"src", "compliance_exports"}
    for child in SRC.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            roots.add(child.name)
        elif child.suffix == ".py" and child.stem != "__init__":
            roots.add(child.stem)
    return frozenset(roots)


def _imported(node: ast.AST) -> Iterator[str]:
    """The absolute module names ``node`` imports (dynamic imports with a literal name too)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        yield node.module
    elif (
        isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        )
    ):
        yield node.args[0].value


def client_imports(source: str, filename: str, roots: frozenset[str]) -> list[str]:
    """``file:line: import ...`` for every import of client code in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        for name in _imported(node):
            if name.split(".")[0] in roots:
                found.append(f"{filename}:{getattr(node, 'lineno', '?')}: imports {name}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def simulator_sources() -> list[Path]:
    return sorted(SIMULATORS.rglob("*.py"))


def test_the_simulators_import_no_client_code() -> None:
    roots = client_roots()
    sources = simulator_sources()
    assert len(sources) >= 15, "every simulator module is checked"
    offending = [
        line
        for path in sources
        for line in client_imports(path.read_text(), str(path.relative_to(REPO)), roots)
    ]
    assert offending == [], "simulators must not import the client:\n" + "\n".join(offending)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import compliance_exports\n", ["x.py:1: imports compliance_exports"]),
        (
            "import os\nfrom compliance_exports.vendors.sailpoint.reports import REPORT_TYPES\n",
            ["x.py:2: imports compliance_exports.vendors.sailpoint.reports"],
        ),
        (
            "import json, src.compliance_exports as c\n",
            ["x.py:1: imports src.compliance_exports"],
        ),
        (
            "def f():\n    from compliance_exports.core import http\n",
            ["x.py:2: imports compliance_exports.core"],
        ),
        (
            "import importlib\nm = importlib.import_module('compliance_exports.registry')\n",
            ["x.py:2: imports compliance_exports.registry"],
        ),
        ("q = __import__('src')\n", ["x.py:1: imports src"]),
        ("from include.simulators.base import Fault\nfrom . import data\n", []),
        ("import compliance_exports_sim\ntext = 'compliance_exports'\n", []),
    ],
)
def test_the_guard_finds_every_form_of_import(source: str, expected: list[str]) -> None:
    assert client_imports(source, "x.py", client_roots()) == expected


def test_the_client_roots_include_the_src_package() -> None:
    assert {"src", "compliance_exports"} <= client_roots()
