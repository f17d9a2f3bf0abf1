"""`motcua`: run the system embedded (`up`) or one service per process (compose).

Building the parser imports nothing of the system: each command imports what it runs, inside its
function, and a command group defined beside its code (COMMAND_GROUPS) is imported only when it
is the command asked for. Importing the runtime (the API, chDB, FastStream) took 2-3 s on an idle
machine and 10-17 s on a busy one, for every command, `--help` included (bench/cli_bench.py).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import importlib
import io
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from core.extra import EmbeddedMissing
from motcua import store_cli, up_cli

# What tests and benches import from here, as before `up` and the store's commands moved out.


def _service(name: str) -> Any:
    def run(_: argparse.Namespace) -> None:
        import asyncio

        from motcua import processes
        from motcua.preflight import StartRefused
        from motcua.settings import Settings

        try:
            asyncio.run(getattr(processes, f"run_{name}")(Settings()))
        except StartRefused as exc:  # one line and its exit code, as `motcua up` says it
            print(f"motcua {name}: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None

    return run


# Command groups whose parsers live beside their code: module and the help `motcua --help`
# shows for it (tests/test_cli_imports.py holds it to the module's own). Some of these modules
# import the store's client or the plans' checks at their top.
COMMAND_GROUPS = {
    "grafana": ("tools.grafana.cli", "dashboards, alert rules and datasource as code"),
    "keys": ("motcua.keys_cli", "API keys: create, list, revoke"),
    "integrators": (
        "motcua.integrators_cli",
        "who may publish events to `motcua up`'s NATS",
    ),
    "dlq": ("motcua.dlq_cli", "dead letters: replay them after a fix"),
    "plans": ("motcua.plans_cli", "the plans in force; check a new plan file"),
}


def _command(argv: Sequence[str]) -> str | None:
    """The command named on the line (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command tree; with `argv`, only the group that names is built in full."""
    parser = argparse.ArgumentParser(prog="motcua", description="Giám sát Một cửa điện tử")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    up_cli.add_parser(sub)

    store_cli.add_parsers(sub)
    for name, text in (
        ("ingest", "run the ingest service alone"),
        ("metrics", "run the metrics service alone"),
        ("api", "run the API alone"),
        ("simulate", "publish simulated traffic to MOTCUA_NATS_URL"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=_service(name))
    wanted = None if argv is None else _command(argv)
    for name, (module, text) in COMMAND_GROUPS.items():
        if argv is None or name == wanted:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=text)  # listed by `motcua --help`, built when asked for
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("faststream").setLevel(logging.WARNING)
    # `kill -USR1 <pid>` writes every thread's stack to stderr: where a process that does not
    # stop, or does not answer, is waiting. (Not where stderr is no file: main() called by a
    # test that captures it.)
    with contextlib.suppress(io.UnsupportedOperation, ValueError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Ingest allocates a few objects per event, none of them cyclic; with the default young-
    # generation threshold (700) the collector ran thousands of times a second and cost the ingest
    # about a fifth of its throughput (bench: E2E 13.1–14.2k → 15.6k events/s, drain 17k → 19.5k).
    gc.set_threshold(50_000, 20, 10)
    try:
        args.func(args)
    except EmbeddedMissing as missing:
        print(f"motcua: {missing}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
