"""The wheel as a deployment gets it (issue 16): built, inspected, installed into a fresh
virtualenv with the pinned Airflow, and seen by Airflow's own CLI.

* built with ``uv build --wheel`` (hatchling, what ``make wheel`` runs);
* holds every file of ``src/compliance_exports`` (the JSON Schema and the UI's static
  files included) and nothing else: no ``tests/``, ``include/``, ``bench/``, ``dags/``;
  its dist-info declares the provider and plugin entry points;
* installed the way the README's "Add it to your Airflow" says (its requirements line,
  pointed at the built wheel) into a new virtualenv, with ``requirements.txt`` as
  constraints: the wheel's own declared dependencies resolve and Airflow is 3.3.2;
* in that virtualenv, with a throwaway ``AIRFLOW_HOME`` and nothing of this checkout on
  ``sys.path``: ``airflow providers list`` lists ``compliance-exports``, ``airflow
  providers hooks`` the four connection types with their hook classes, ``airflow plugins``
  the plugin;
* the README's DAG file and registry, written as it says, parse into the registry's DAGs
  without an import error.

uv's cache makes the install take seconds after the first run.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from compliance_exports.provider_info import get_provider_info

pytestmark = [pytest.mark.airflow]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "compliance_exports"
UV = REPO / ".cache" / "bootstrap" / "bin" / "uv"  # scripts/bootstrap.sh installs it
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DISTRIBUTION = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]
SECTION = "## Add it to your Airflow"
REQUIREMENT = re.compile(r"^compliance-exports @ file://(?P<path>\S+\.whl)$", re.MULTILINE)
FILE_BLOCK = re.compile(r"```(?:python|yaml)\n# (?P<path>[\w./-]+)\n(?P<body>.*?)```", re.DOTALL)


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, label: str, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
        self.seconds[label] = round(time.monotonic() - started, 2)
        assert done.returncode == 0, (
            f"{label}: {argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done


@pytest.fixture(scope="module")
def timings() -> Iterator[Timings]:
    found = Timings()
    yield found
    print(f"\nwheel test timings (s): {json.dumps(found.seconds)}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, timings: Timings) -> Path:
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run `make venv` (scripts/bootstrap.sh installs it)")
    out = tmp_path_factory.mktemp("dist")
    timings.run("uv build --wheel", [str(UV), "build", "--wheel", "--out-dir", str(out), str(REPO)])
    [built] = out.glob("*.whl")
    assert built.name == f"compliance_exports-{VERSION}-py3-none-any.whl"
    return built


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    assert SECTION in text, f"README.md has no {SECTION!r}"
    rest = text.split(SECTION, 1)[1]
    return rest.split("\n## ", 1)[0]


def readme_files() -> dict[str, str]:
    """The files the section shows, each a code block starting with ``# <path>``."""
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(readme_section())}


@dataclass
class Venv:
    root: Path
    home: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """Nothing of this checkout or of the suite's Airflow: a user's shell."""
        keep = {"HOME", "LANG", "LC_ALL", "TMPDIR"}
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            PATH=os.pathsep.join([str(self.root / "bin"), "/usr/bin", "/bin"]),
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            **extra,
        )
        return env


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory, timings: Timings) -> Venv:
    """A fresh virtualenv with the wheel installed by the README's requirements line."""
    root = tmp_path_factory.mktemp("fresh") / "venv"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    timings.run("uv venv", [str(UV), "venv", "--quiet", "--python", python, str(root)])
    [line] = REQUIREMENT.finditer(readme_section())
    assert Path(line["path"]).name == wheel.name, "the README names another wheel"
    requirements = root.parent / "requirements.txt"
    requirements.write_text(line[0].replace(line["path"], str(wheel)) + "\n")
    timings.run(
        "uv pip install (README line, lock as constraints)",
        [
            str(UV),
            "pip",
            "install",
            "--python",
            str(root / "bin" / "python"),
            "--requirement",
            str(requirements),
            "--constraint",
            str(REPO / "requirements.txt"),
        ],
        cwd=root.parent,
    )
    return Venv(root=root, home=root.parent / "airflow-home")


# --- the wheel's contents ------------------------------------------------------------------


def test_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = f"compliance_exports-{VERSION}.dist-info"
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()

    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"compliance_exports", dist_info}, tops
    for outside in ("tests/", "include/", "bench/", "dags/", "src/"):
        assert not [n for n in names if n.startswith(outside)], outside

    on_disk = {
        f"compliance_exports/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    packaged = {n for n in names if n.startswith("compliance_exports/")}
    assert packaged == on_disk, {
        "missing from the wheel": sorted(on_disk - packaged),
        "not in src": sorted(packaged - on_disk),
    }
    assert "compliance_exports/landing/manifest.schema.json" in packaged
    data_files = sorted(n for n in packaged if not n.endswith(".py"))
    print(f"\nnon-Python files in the wheel: {data_files}")

    points = configparser.ConfigParser(delimiters=("=",))
    points.optionxform = str  # type: ignore[assignment, method-assign]
    points.read_string(entry_points)
    provider = points["apache_airflow_provider"]["provider_info"]
    assert provider == "compliance_exports.provider_info:get_provider_info"
    plugin = points["airflow.plugins"]["compliance_exports"]
    assert plugin == "compliance_exports.ui.plugin:EvidencePlugin"
    assert f"Name: {DISTRIBUTION}\n" in metadata
    assert f"Version: {VERSION}\n" in metadata
    assert "Requires-Dist: apache-airflow>=3.3.2" in metadata


# --- installed into a fresh virtualenv -----------------------------------------------------


def _airflow_json(venv: Venv, timings: Timings, *args: str) -> Any:
    done = timings.run(
        f"airflow {' '.join(args)}",
        [str(venv.root / "bin" / "airflow"), *args, "--output", "json"],
        env=venv.env(),
        cwd=venv.root.parent,
    )
    start = min(i for i in (done.stdout.find("["), done.stdout.find("{")) if i >= 0)
    return json.loads(done.stdout[start:])


def test_installs_with_the_pinned_airflow_from_the_wheel(venv: Venv, timings: Timings) -> None:
    done = timings.run(
        "import check",
        [
            str(venv.python),
            "-c",
            "import importlib.metadata as m, compliance_exports as c; "
            "print(m.version('apache-airflow'), m.version('compliance-exports'), c.__file__)",
        ],
        env=venv.env(),
        cwd=venv.root.parent,
    )
    airflow_version, version, location = done.stdout.split()
    assert airflow_version == "3.3.2"
    assert version == VERSION
    assert Path(location).is_relative_to(venv.root), f"imported from {location}, not the wheel"


def test_airflow_lists_the_provider_and_its_hooks(venv: Venv, timings: Timings) -> None:
    info = get_provider_info()
    providers = {p["package_name"]: p for p in _airflow_json(venv, timings, "providers", "list")}
    assert DISTRIBUTION in providers, sorted(providers)
    assert providers[DISTRIBUTION]["version"] == VERSION

    hooks = {h["connection_type"]: h for h in _airflow_json(venv, timings, "providers", "hooks")}
    for ct in info["connection-types"]:
        listed = hooks.get(ct["connection-type"])
        assert listed is not None, f"{ct['connection-type']} is not listed"
        assert listed["class"] == ct["hook-class-name"]
        assert listed["package_name"] == DISTRIBUTION
        assert listed["hook_name"] == ct["hook-name"]
    ours = {t for t, h in hooks.items() if h["package_name"] == DISTRIBUTION}
    assert ours == {"oleria", "veza", "sailpoint", "maxsight"}

    plugins = {p["name"]: p for p in _airflow_json(venv, timings, "plugins")}
    assert "compliance_exports" in plugins, sorted(plugins)
    assert f"{DISTRIBUTION}=={VERSION}" in plugins["compliance_exports"]["source"]


def test_the_readme_dag_file_and_registry_parse(
    venv: Venv, timings: Timings, tmp_path: Path
) -> None:
    files = readme_files()
    dag_files = [p for p in files if p.endswith(".py")]
    registries = [p for p in files if p.endswith((".yaml", ".yml"))]
    assert len(dag_files) == 1, sorted(files)
    assert len(registries) == 1, sorted(files)
    for path, body in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    dags = (tmp_path / dag_files[0]).parent
    script = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "print(json.dumps({'errors': {k: str(v)[-2000:] for k, v in bag.import_errors.items()},"
        " 'dags': sorted(bag.dag_ids)}))\n"
    )
    done = timings.run(
        "parse the README's DAG file",
        [str(venv.python), "-c", script, str(dags)],
        env=venv.env(COMPLIANCE_EXPORTS_REGISTRY=str(tmp_path / registries[0])),
        cwd=tmp_path,
    )
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["dags"], "no DAG was built"
