"""Nothing of the package outside vendors/ names a vendor: each vendor lives in its own
folder under vendors/ (issue #12's check, `grep -rniE "oleria|veza|sailpoint|maxsight"`),
so the registry, the DAG factory, core/, landing/, the UI, alerts, verify and lineage
serve any vendor. The one exception is :data:`ALLOWED`."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "compliance_exports"
CORE = sorted((PACKAGE / "core").rglob("*.py"))
#: the provider info names the built-in vendors' connection types for Airflow's forms
ALLOWED = {PACKAGE / "provider_info.py"}
TEXT = {".py", ".json", ".html", ".md", ".yaml"}
VENDOR_NAMES = re.compile(r"oleria|veza|sailpoint|maxsight", re.IGNORECASE)


def vendor_mentions(root: Path, paths: list[Path]) -> list[str]:
    """``file:line: text`` for every line of ``paths`` that names one of the vendors."""
    return [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if VENDOR_NAMES.search(line)
    ]


def generic_files() -> list[Path]:
    """Every text file of the package outside vendors/ (and the allowed ones)."""
    vendors = PACKAGE / "vendors"
    return sorted(
        path
        for path in PACKAGE.rglob("*")
        if path.suffix in TEXT and vendors not in path.parents and path not in ALLOWED
    )


def test_the_generic_layers_name_no_vendor() -> None:
    generic = generic_files()
    assert CORE, "no core module found: the check would pass on nothing"
    for must in (PACKAGE / "registry.py", PACKAGE / "dag_factory.py", *CORE):
        assert must in generic, must
    assert PACKAGE / "ui" / "evidence.html" in generic
    assert vendor_mentions(PACKAGE, generic) == []


def test_the_check_names_the_file_and_line(tmp_path: Path) -> None:
    module = tmp_path / "generic.py"
    module.write_text('"""Generic."""\n\n# unlike SailPoint, ...\n')
    assert vendor_mentions(tmp_path, [module]) == ["generic.py:3: # unlike SailPoint, ..."]
