"""One service per process, as docker-compose runs them. Each needs MOTCUA_NATS_URL and, for more
than one process, a ClickHouse server URL (a chDB directory opens in one process only)."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

import uvicorn

from core.plans.source import PlanSource
from core.storage.clickhouse import connect
from core.storage.pool import pooled
from motcua import preflight
from motcua.embedded import (
    Settings,
    _EmbeddedServer,
    _nats_ready,
    connect_metrics,
    connect_nats,
    jetstream_publisher,
    start_ingest,
    start_metrics,
)
from services.api.app import create_app
from services.api.deps import ApiContext
from services.api.keys import KeyStore
from services.api.page.cache import PageCache

log = logging.getLogger("motcua")


def _nats_url(settings: Settings) -> str:
    if not settings.nats_url:
        raise SystemExit("MOTCUA_NATS_URL must be set when a service runs on its own")
    return settings.nats_url


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_ingest(settings: Settings) -> None:
    stop = _stop_event()
    broker, pipeline = await start_ingest(settings, _nats_url(settings))
    flusher = asyncio.create_task(pipeline.run())
    await asyncio.wait([flusher, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    await pipeline.stop()
    await flusher
    await pipeline.flush()
    await broker.stop()


async def run_metrics(settings: Settings) -> None:
    stop = _stop_event()
    plans = PlanSource(settings.plans_dir)
    client = await asyncio.to_thread(connect_metrics, settings)
    # Alerts go to NATS when it is configured; without it they are still stored and served.
    nc = await connect_nats(settings.nats_url) if settings.nats_url else None
    service = start_metrics(client, settings, plans, jetstream_publisher(nc) if nc else None)
    task = asyncio.create_task(service.run())
    await stop.wait()
    service.stop()
    await task
    if nc is not None:
        await nc.drain()


async def run_api(settings: Settings) -> None:
    nc = await connect_nats(_nats_url(settings))
    client = pooled(
        lambda: connect(settings.resolved_clickhouse_url(), limits=settings.api_limits()),
        settings.api_query_concurrency,
    )
    # The API reads ClickHouse as a read-only user (compose: api_ro), so it checks keys but never
    # writes them: `motcua migrate` adds the bootstrap key, `motcua keys` manages the rest.
    keys = KeyStore(client, writable=False)
    if settings.bootstrap_admin_key and not await asyncio.to_thread(
        keys.authenticate, settings.bootstrap_admin_key.get_secret_value()
    ):
        log.warning(
            "MOTCUA_BOOTSTRAP_ADMIN_KEY is not an active key: set it on `motcua migrate` "
            "(the admin connection), which stores it"
        )
    app = create_app(
        ApiContext(
            clickhouse=client,
            nats_ready=_nats_ready(nc),
            keys=keys,
            clock=lambda: datetime.now(UTC),
            # Loaded here, so a bad plan file stops the start as it does for `motcua metrics`.
            plans=PlanSource(settings.plans_dir),
            page_cache=PageCache(settings.api_page_cache_seconds),
            admission=settings.api_admission(),
            export_max_rows=settings.api_export_max_rows,
            completeness_threshold=settings.completeness_threshold,
            completeness_cache=settings.api_completeness_cache(),
        )
    )
    # Stopped by our handler, like the other services: uvicorn's own re-raises the signal after
    # its shutdown, and the process died of it (exit -2 / 143, a KeyboardInterrupt traceback).
    stop = _stop_event()
    server = _EmbeddedServer(
        uvicorn.Config(app, host=settings.api_host, port=settings.api_port, lifespan="off")
    )
    # A busy port: one line and exit code 3 (motcua/cli.py), not uvicorn's log and exit 1.
    api_socket = preflight.bind_api(settings.api_host, settings.api_port)
    serving = asyncio.create_task(server.serve(sockets=[api_socket]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
    await nc.drain()


async def run_simulate(settings: Settings) -> None:
    from tools.simulator.publisher import run_simulator

    stop = _stop_event()
    nc = await connect_nats(_nats_url(settings))
    await run_simulator(
        nc.jetstream(),
        seed=7860,
        history_days=60,
        stop=stop,
        now=lambda: datetime.now(UTC),
    )
    await nc.drain()
