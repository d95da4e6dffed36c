from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = (
    "compliance_exports.core.errors",
    "compliance_exports.vendors.oleria.filters",
    "compliance_exports.vendors.veza.scim",
    "compliance_exports.vendors.veza.validation",
    "compliance_exports.vendors.sailpoint.reports",
    "compliance_exports.vendors.maxsight.query",
)
HEAVY = ("airflow", "httpx", "boto3", "botocore", "pyarrow", "pandas", "fastapi")


def test_vocabulary_modules_import_nothing_heavy() -> None:
    """Simulators and the DAG-parse path import these: no Airflow, no HTTP client, no pyarrow."""
    probe = (
        f"import sys, {', '.join(MODULES)}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"PATH": ""},  # compliance_exports: the editable install
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
