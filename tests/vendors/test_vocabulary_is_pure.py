from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from compliance_exports.core.vendor import builtin_vendor_names

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


def test_the_provider_info_and_the_connection_types_import_nothing_heavy() -> None:
    """Airflow's ProvidersManager calls ``get_provider_info()`` in every Airflow process:
    it collects each built-in vendor's ``connection`` module (whose package imports its
    spec), and none of that may pull in Airflow or an HTTP client."""
    probe = (
        "import sys; from compliance_exports.provider_info import get_provider_info; "
        "types = [ct['connection-type'] for ct in get_provider_info()['connection-types']]; "
        "print(sorted(types)); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env={"PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    collected, heavy = result.stdout.strip().splitlines()
    assert collected == repr(sorted(builtin_vendor_names()))
    assert heavy == "[]"
