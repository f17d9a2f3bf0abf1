"""`motcua dlq replay`: the command over core/ingestion/dlq.py's replay of dead letters.

Opens the store and (in embedded mode) the data directory's NATS itself, so it runs while
`motcua up` is stopped. Its parser is built without loading either (tests/test_cli_imports.py).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from core.ingestion.dlq import ReplayReport, replay_dead_letters
from core.zone import VN

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


def parse_since(text: str) -> datetime:
    """YYYY-MM-DD (midnight in Asia/Ho_Chi_Minh) or an ISO 8601 instant with an offset."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        at = datetime.fromisoformat(text)
        if at.tzinfo is None:
            raise argparse.ArgumentTypeError(f"{text!r}: give an offset, e.g. +07:00") from None
        return at
    return datetime(day.year, day.month, day.day, tzinfo=VN)


def _replay_command(args: argparse.Namespace) -> None:
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate
    from motcua.settings import Settings

    settings = Settings()
    url = settings.resolved_clickhouse_url()
    try:
        client = connect(url, create_database=True)
    except Exception as exc:
        raise SystemExit(
            f"cannot open the store {url} ({exc}): an embedded (chDB) store opens in one process "
            "only, so stop `motcua up` first; the republished events are ingested at its next start"
        ) from exc
    migrate(client, cluster=settings.clickhouse_cluster)
    report = asyncio.run(_run_replay(settings, client, args))
    print("\n".join(report.lines()))


async def _run_replay(settings: Any, client: Client, args: argparse.Namespace) -> ReplayReport:
    options: dict[str, Any] = {
        "integrator": args.integrator,
        "reason": args.reason,
        "since": args.since,
        "dry_run": args.dry_run,
    }
    if args.dry_run:
        return await replay_dead_letters(client, None, **options)
    import nats

    from core.messaging.nats_auth import start_embedded
    from core.messaging.urls import connect_options, servers

    server = None
    url = settings.nats_url
    if not url:  # embedded mode: the stream lives under the data directory; open it ourselves
        server, urls, notice = await start_embedded(settings.data_dir / "nats", settings.nats_port)
        if notice:  # a data directory `motcua up` never ran on: its credentials, shown once
            print(notice)
        url = urls.admin
    try:
        nc = await nats.connect(
            servers(url), connect_timeout=3, max_reconnect_attempts=1, **connect_options(url)
        )
        try:
            if server:  # as `motcua up` would at start: the stream must exist to take the events
                from core.messaging.streams import ensure_streams

                await ensure_streams(nc.jetstream())
            return await replay_dead_letters(client, nc.jetstream(), **options)
        finally:
            await nc.drain()
    finally:
        if server:
            server.stop()


def add_parser(sub: Any) -> None:
    dlq = sub.add_parser("dlq", help="dead letters: replay them after a fix")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    replay = dlq_sub.add_parser(
        "replay",
        help="re-run the current processor on stored dead letters; republish those that pass",
    )
    replay.add_argument("--integrator", help="agency code of the dead letters' subject")
    replay.add_argument("--reason", help="only dead letters with this reason, e.g. invalid_field")
    replay.add_argument(
        "--since",
        type=parse_since,
        help="dead-lettered at or after: YYYY-MM-DD (Vietnam) or ISO 8601 with an offset",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="say what would happen; publish and record nothing"
    )
    replay.set_defaults(func=_replay_command)
