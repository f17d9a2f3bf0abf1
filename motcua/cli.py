"""`motcua`: run the system embedded (`up`) or one service per process (compose).

Building the parser imports nothing of the system: each command imports what it runs, inside its
function, and a command group defined beside its code (COMMAND_GROUPS) is imported only when it
is the command asked for. Importing the runtime (the API, chDB, FastStream) took 2-3 s on an idle
machine and 10-17 s on a busy one, for every command, `--help` included (bench/cli_bench.py).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.ingestion.reference_loader import LoadCount
    from motcua import embedded
    from schemas.v1.reference import ReferenceEvent

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

    settings = embedded.Settings()
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


def _migrate(_: argparse.Namespace) -> None:
    import asyncio

    from motcua import embedded

    async def go() -> None:
        settings = embedded.Settings()
        client = await embedded.prepare_storage(settings)
        if settings.bootstrap_admin_key:  # the admin connection stores it; `motcua api` cannot
            from services.api.keys import KeyStore

            store = KeyStore(client)
            token = settings.bootstrap_admin_key.get_secret_value()
            _, added = await asyncio.to_thread(store.ensure_bootstrap, token)
            print("bootstrap admin API key stored" if added else "bootstrap admin API key present")
        if settings.grafana_api_key:
            from services.api.keys import KeyStore, Role

            token = settings.grafana_api_key.get_secret_value()
            _, added = await asyncio.to_thread(
                KeyStore(client).ensure_bootstrap,
                token,
                Role.viewer,
                "grafana boards",
                "MOTCUA_GRAFANA_API_KEY",
            )
            print(f"Grafana's viewer API key {'stored' if added else 'present'}")
        if settings.nats_url:
            nc = await embedded.connect_nats(settings.nats_url)
            from core.messaging.streams import StreamReplicasRefused, ensure_streams

            try:
                await ensure_streams(nc.jetstream(), settings.stream_replicas)
            except StreamReplicasRefused as exc:
                raise SystemExit(f"motcua migrate: {exc}") from None
            finally:
                await nc.drain()
        print("migrations applied; streams declared" if settings.nats_url else "migrations applied")

    asyncio.run(go())


def _replay(args: argparse.Namespace) -> None:
    import asyncio
    import time

    from core.figures.facts import replay_all
    from core.ingestion.restream import restream
    from core.ingestion.writer import EventWriter
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate
    from core.storage.replay import text_progress
    from motcua import embedded

    settings = embedded.Settings()
    try:
        client = connect(settings.resolved_clickhouse_url(), create_database=True)
    except Exception as exc:
        raise SystemExit(f"cannot open the store (is `motcua up` still running?): {exc}") from exc
    migrate(client, cluster=settings.clickhouse_cluster)
    if args.from_stream:
        if not settings.nats_url:
            raise SystemExit("--from-stream needs MOTCUA_NATS_URL (a running NATS server)")
        stored, dead = asyncio.run(restream(settings.nats_url, EventWriter(client), text_progress))
        print(f"from the stream: {stored} events stored, {dead} dead-lettered")
        from core.ingestion.reference_restream import restream_reference
        from core.ingestion.reference_writer import ReferenceWriter

        ref = asyncio.run(restream_reference(settings.nats_url, ReferenceWriter(client)))
        print(
            f"reference data from the stream: {ref.stored} records stored, "
            f"{ref.duplicates} already stored, {ref.dead_lettered} dead-lettered"
        )
    started = time.perf_counter()
    counts = replay_all(
        client,
        progress=text_progress,
        chunk_events=settings.replay_chunk_events,
        chunk_parts=settings.replay_chunk_parts,
    )
    for table, rows in counts.items():
        print(f"{table}: {rows} rows")
    print(f"rebuilt in {time.perf_counter() - started:.1f} s")


def _catalog_load(args: argparse.Namespace) -> None:
    from core.ingestion.reference_loader import CatalogFileError, read_catalog_file, summary

    try:
        events = read_catalog_file(args.file)
    except (OSError, CatalogFileError) as exc:
        raise SystemExit(f"{args.file}: {exc}") from exc
    import asyncio

    from motcua import embedded

    settings = embedded.Settings()
    if args.direct:
        lines = summary(_store_directly(settings, events), "stored", "already stored")
    else:
        url = settings.nats_url or _local_nats_url(settings)
        counts = asyncio.run(_publish_reference(url, events))
        lines = summary(counts, "published", "already in the stream")
    print("\n".join(lines))


def _local_nats_url(settings: embedded.Settings) -> str:
    """The local `motcua up`'s server, as its admin user (it publishes the reference data)."""
    from core.messaging.nats_auth import admin_url

    return admin_url(settings.data_dir / "nats", f"nats://127.0.0.1:{settings.nats_port}")


def _store_directly(
    settings: embedded.Settings, events: Sequence[ReferenceEvent]
) -> dict[str, LoadCount]:
    from core.ingestion.reference_loader import store_events
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate

    url = settings.resolved_clickhouse_url()
    try:
        client = connect(url, create_database=True)
    except Exception as exc:
        raise SystemExit(
            f"cannot open the store {url}: {exc}\n--direct needs the store to itself: an embedded "
            "(chDB) store opens in one process only, so stop `motcua up` first, or load without "
            "--direct to publish through NATS to the running system."
        ) from exc
    migrate(client, cluster=settings.clickhouse_cluster)
    return store_events(client, events)


async def _publish_reference(url: str, events: Sequence[ReferenceEvent]) -> dict[str, LoadCount]:
    import nats

    from core.ingestion.reference_loader import publish_events
    from core.messaging.nats_auth import connect_options, redacted, servers

    async def quiet(_: Exception) -> None:  # the failure is reported once, below
        return None

    try:
        # max_reconnect_attempts=0 would mean "forever", even for the first connection.
        nc = await nats.connect(
            servers(url),
            **connect_options(url),
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            connect_timeout=3,
            error_cb=quiet,
        )
    except Exception as exc:
        raise SystemExit(
            f"cannot reach NATS at {redacted(url)} ({exc!r}): start `motcua up` (or set "
            "MOTCUA_NATS_URL), "
            "or use --direct to write into a store that no process has open."
        ) from exc
    try:
        return await publish_events(nc.jetstream(), events)
    except Exception as exc:
        raise SystemExit(
            f"publishing to {redacted(url)} failed: {exc!r} (is MOTCUA_REFERENCE declared?)"
        ) from exc
    finally:
        await nc.close()


def _service(name: str) -> Any:
    def run(_: argparse.Namespace) -> None:
        import asyncio

        from motcua import embedded, processes
        from motcua.preflight import StartRefused

        try:
            asyncio.run(getattr(processes, f"run_{name}")(embedded.Settings()))
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
    "dlq": ("core.ingestion.dlq", "dead letters: replay them after a fix"),
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

    sub.add_parser("migrate", help="apply ClickHouse migrations, declare streams").set_defaults(
        func=_migrate
    )
    replay = sub.add_parser(
        "replay", help="rebuild every derived table from the stored events (stop `up` first)"
    )
    replay.add_argument(
        "--from-stream", action="store_true", help="first read the events back from JetStream"
    )
    replay.set_defaults(func=_replay)
    catalog = sub.add_parser("catalog", help="reference data: the org tree and the TTHC catalogue")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    load = catalog_sub.add_parser(
        "load",
        help="load agencies and procedures from a JSON file (publish to NATS, or --direct)",
    )
    load.add_argument("file", type=Path, help='{"agencies": [...], "procedures": [...]}')
    load.add_argument(
        "--direct",
        action="store_true",
        help="write straight into the store (only while `motcua up` is not running)",
    )
    load.set_defaults(func=_catalog_load)
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
    # Ingest allocates a few objects per event, none of them cyclic; with the default young-
    # generation threshold (700) the collector ran thousands of times a second and cost the ingest
    # about a fifth of its throughput (bench: E2E 13.1–14.2k → 15.6k events/s, drain 17k → 19.5k).
    gc.set_threshold(50_000, 20, 10)
    args.func(args)


if __name__ == "__main__":
    main()
