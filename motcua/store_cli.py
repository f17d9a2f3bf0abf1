"""The store's commands: `motcua migrate` (schema, streams, bootstrap keys), `motcua replay`
(rebuild the derived tables) and `motcua catalog load` (reference data). Each imports what it
runs inside its function (motcua/cli.py)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.ingestion.reference_loader import LoadCount
    from motcua.settings import Settings
    from schemas.v1.reference import ReferenceEvent


def _migrate(_: argparse.Namespace) -> None:
    import asyncio

    from core.messaging.client import connect_nats
    from motcua.embedded import prepare_storage
    from motcua.settings import Settings

    async def go() -> None:
        settings = Settings()
        client = await prepare_storage(settings)
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
            nc = await connect_nats(settings.nats_url)
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

    from core.figures.refolder import replay_all
    from core.ingestion.restream import restream
    from core.ingestion.writer import EventWriter
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate
    from core.storage.replay import text_progress
    from motcua.settings import Settings

    settings = Settings()
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
        from core.ingestion.restream import restream_reference
        from core.ingestion.writer import ReferenceWriter

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

    from motcua.settings import Settings

    settings = Settings()
    if args.direct:
        lines = summary(_store_directly(settings, events), "stored", "already stored")
    else:
        url = settings.nats_url or _local_nats_url(settings)
        counts = asyncio.run(_publish_reference(url, events))
        lines = summary(counts, "published", "already in the stream")
    print("\n".join(lines))


def _local_nats_url(settings: Settings) -> str:
    """The local `motcua up`'s server, as its admin user (it publishes the reference data)."""
    from core.messaging.nats_auth import admin_url

    return admin_url(settings.data_dir / "nats", f"nats://127.0.0.1:{settings.nats_port}")


def _store_directly(settings: Settings, events: Sequence[ReferenceEvent]) -> dict[str, LoadCount]:
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
    from core.messaging.urls import connect_options, redacted, servers

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


def add_parsers(sub: Any) -> None:
    """migrate, replay and catalog on the command's subparsers."""
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
