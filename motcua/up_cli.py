"""`motcua up`: its parser (options, exit codes, the environment it reads) and the command, which
runs motcua/embedded.py. Imports nothing of the system until the command runs (motcua/cli.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

# `motcua up`'s exit codes besides 0, 1 (a failure the traceback explains) and 2 (usage); each
# refusal is one line on stderr. README, "Exit codes".
EXIT_PLAN_FILE = 7
UP_EPILOG = """\
exit codes: 3 the API's port is in use, 4 the NATS port is in use, 5 the data directory
cannot be written, 6 the data directory is in use by another process, 7 a plan file is invalid.

configuration: environment variables (the README's "Configuration" table lists them all), e.g.
  MOTCUA_DATA_DIR        where the NATS store and the chDB store live (default: data)
  MOTCUA_API_HOST        the API's address (default: 127.0.0.1)
  MOTCUA_API_PORT        the API's port (default: 8000)
  MOTCUA_NATS_PORT       the embedded nats-server's port (default: 4222)
  MOTCUA_NATS_URL        use this NATS server instead of starting one (a cluster: its
                         servers' URLs, comma-separated)
  MOTCUA_CLICKHOUSE_URL  chdb:///path or http(s)://user:pass@host:port/db
  MOTCUA_BOOTSTRAP_ADMIN_KEY  an admin API key to store at start (>= 32 characters)
  MOTCUA_PLANS_DIR       a directory of extra plan files (*.yaml)
"""


class _UpHelp(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help (a flag's False says nothing), the epilog as
    written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if isinstance(action.default, bool) or "default" in text:
            return text
        return super()._get_help_string(action)


def _up(args: argparse.Namespace) -> None:
    import asyncio

    from core.messaging.streams import StreamReplicasRefused
    from core.plans.loader import PlanError
    from motcua import embedded
    from motcua.preflight import StartRefused
    from motcua.settings import Settings

    settings = Settings()
    if args.nats_cluster and settings.nats_url:
        print(
            "motcua up: --nats-cluster starts its own nats-servers; MOTCUA_NATS_URL names others: "
            "use one or the other",
            file=sys.stderr,
        )
        raise SystemExit(2)
    simulate = _simulate_options(args)
    try:
        asyncio.run(embedded.run_until_signal(settings, simulate, args.nats_cluster))
    except StartRefused as exc:
        print(f"motcua up: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except StreamReplicasRefused as exc:  # JetStream's reason, not a traceback around it
        print(f"motcua up: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except PlanError as exc:
        print(f"motcua up: invalid plan file {exc}", file=sys.stderr)
        raise SystemExit(EXIT_PLAN_FILE) from None


def _simulate_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The simulator's options of `motcua up`, or None without --simulate; a fault flag that is
    wrong, or given without --simulate, stops here (exit 2) before anything starts."""
    after = args.simulate_republish_after
    faulty = bool(args.simulate_silent or args.simulate_lose_batch) or after is not None
    if not args.simulate:
        if faulty:
            print("motcua up: the --simulate-… options need --simulate", file=sys.stderr)
            raise SystemExit(2)
        return None
    options: dict[str, Any] = {
        "seed": args.seed,
        "history_days": args.history_days,
        "rate_per_second": args.rate,
    }
    if faulty:
        from datetime import timedelta

        from tools.simulator.faults import FaultPlan, parse_lost_batch, parse_silence

        try:
            silences = tuple(parse_silence(text) for text in args.simulate_silent or ())
            lost = tuple(parse_lost_batch(text) for text in args.simulate_lose_batch or ())
        except ValueError as exc:
            print(f"motcua up: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        republish = None if after is None else timedelta(minutes=after)
        options["faults"] = FaultPlan(silences, lost, republish)
    return options


def add_parser(sub: Any) -> None:
    """`motcua up` on the command's subparsers."""
    up = sub.add_parser(
        "up",
        help="run everything in one process (embedded NATS and chDB)",
        formatter_class=_UpHelp,
        epilog=UP_EPILOG,
    )
    up.add_argument("--simulate", action="store_true", help="publish realistic Khánh Hòa traffic")
    up.add_argument("--seed", type=int, default=7860, help="simulator seed (default 7860)")
    up.add_argument("--history-days", type=int, default=60, help="days of history to backfill")
    up.add_argument(
        "--rate",
        type=float,
        default=None,
        help="top live traffic up to this many events per second, for a faster demo (default: "
        "the history's own volume, ~150 dossiers per working day, in office hours)",
    )
    up.add_argument(
        "--simulate-silent",
        action="append",
        metavar="AGENCY[@FROM]",
        help="simulate a feed gone silent: from FROM on, AGENCY publishes nothing, neither events "
        "nor daily manifests (FROM: YYYY-MM-DD, from 00:00 in Vietnam; YYYY-MM-DDTHH:MM; or "
        "'now'; default: the start of the second working day before today); repeatable",
    )
    up.add_argument(
        "--simulate-lose-batch",
        action="append",
        metavar="AGENCY[@DAY]",
        help="simulate a lost batch: AGENCY's events of DAY (YYYY-MM-DD) from 12:00 on are never "
        "published, while DAY's manifest counts them and lists their ids (default DAY: the last "
        "working day before today); a later `motcua up --simulate` without it republishes them "
        "with the history; repeatable",
    )
    up.add_argument(
        "--simulate-republish-after",
        type=float,
        metavar="MINUTES",
        help="publish the lost batches this many minutes after the start, once their day is "
        "over, so the gap closes (default: not in this run)",
    )
    up.add_argument(
        "--nats-cluster",
        type=int,
        choices=(3, 4, 5),
        default=0,
        metavar="N",
        help="start N local nats-servers (3-5) as one JetStream cluster instead of one, on "
        "MOTCUA_NATS_PORT and the next N-1 ports, streams with 3 replicas: to watch a node "
        "fail over (default: one server)",
    )
    up.set_defaults(func=_up)
