"""What the CLI imports before it runs a command (issue 15): the parser and `--help` must not load
the runtime, the API, chDB or FastStream, which made every command, `--help` included, take
10-17 s on a busy machine. Checked as the modules loaded, not as time (bench/cli_bench.py times
it)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest

from motcua.cli import COMMAND_GROUPS, build_parser
from motcua.up_cli import UP_EPILOG

pytestmark = pytest.mark.pure

HEAVY = (
    "chdb",
    "clickhouse_connect",
    "fastapi",
    "faststream",
    "uvicorn",
    "nats",
    "numpy",
    "openpyxl",
    "pydantic_settings",
    "motcua.embedded",
    "services.api.app",
)

_LOADED = """
import json, sys
from motcua.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit as exit:
    code = exit.code
else:
    code = None
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def loaded(argv: list[str]) -> dict[str, object]:
    """Run `motcua <argv>` in a fresh interpreter; its exit code and the heavy modules loaded."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_cli_loads_nothing_heavy() -> None:
    # Catches: an eager `from services import runtime` (or any chDB/FastAPI/FastStream import)
    # back at the top of motcua/cli.py.
    code = f"import sys, motcua.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["up", "--help"],
        ["migrate", "--help"],
        ["integrators", "--help"],
        ["keys", "create", "--help"],
        ["grafana", "--help"],
        ["plans", "--help"],
        ["plans", "check", "--help"],
        ["dlq", "--help"],
    ],
    ids=" ".join,
)
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    # Catches: a parser that imports what its commands run (the runtime, the key store, the
    # NATS users' module) just to print its help.
    assert loaded(argv) == {"code": 0, "heavy": []}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {a.dest: a.help for a in action._choices_actions}


def test_a_group_built_on_demand_is_the_group_its_module_defines() -> None:
    # Catches: the help `motcua --help` shows for a lazily built group drifting from the one its
    # module declares, or a group that is only a placeholder when it is the command asked for.
    full = build_parser()
    assert _helps(build_parser(["--help"])) == _helps(full)
    for name in COMMAND_GROUPS:
        built = _subcommands(build_parser([name, "--help"]))[name]
        assert set(_subcommands(built)) == set(_subcommands(_subcommands(full)[name])), name


def test_each_group_answers_its_help() -> None:
    # Catches: a group whose module cannot be imported, or whose parser breaks, found only when
    # an operator runs it.
    for name in COMMAND_GROUPS:
        done = subprocess.run(
            [sys.executable, "-m", "motcua.cli", name, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and f"usage: motcua {name}" in done.stdout, done.stderr


def test_key_roles_offered_are_the_key_stores() -> None:
    # Catches: a role added to the key store that `motcua keys create --role` refuses.
    from motcua.keys_cli import ROLE_NAMES
    from services.api.keys import Role

    assert tuple(r.name for r in Role) == ROLE_NAMES


def test_up_help_shows_the_defaults_and_the_environment() -> None:
    # Catches: `motcua up --help` not saying the simulator's defaults or how to configure the
    # rest, and an epilog whose defaults or variable names drift from the settings.
    from motcua.settings import Settings

    up = _subcommands(build_parser(["up", "--help"]))["up"].format_help()
    assert "(default: 60)" in up  # --history-days
    assert "--rate" in up and "MOTCUA_DATA_DIR" in up and "README" in up
    assert "exit codes: 3" in " ".join(up.split())
    fields = Settings.model_fields
    named = re.findall(r"(MOTCUA_\w+)\s.*?(?:\(default: ([^)]*)\))?$", UP_EPILOG, re.M)
    assert len(named) == 8
    for variable, default in named:
        name = variable.removeprefix("MOTCUA_").lower()
        assert name in fields, variable
        if default:
            assert str(fields[name].default) == default, variable
