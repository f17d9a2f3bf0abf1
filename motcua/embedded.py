"""`motcua up`: the whole system in one process, on an embedded nats-server (or a local cluster)
and chDB; one service per process (compose) is motcua/processes.py.

Embedded mode keeps ingest, metrics and the API in one process because a chDB data directory can
be opened by one process only; a ClickHouse server URL lifts that and nothing else changes. Each
process is started here through its entry point (services/*/main.py); the settings are their
composition (motcua/settings.py). Before anything is created motcua/preflight.py checks what it
can; motcua/embedded_nats.py starts NATS, motcua/banner.py prints the banner.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import io
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.ingestion.dlq import replay_dead_letters
from core.ingestion.reference_loader import seed_if_empty
from core.messaging.client import connect_nats
from core.messaging.nats_cluster import LocalCluster
from core.messaging.nats_server import EmbeddedNats
from core.messaging.streams import ensure_streams
from core.messaging.urls import RoleUrls
from core.plans.source import PlanSource
from core.reference.calendar import WorkingCalendar
from core.reference.calendar_store import sync_calendar
from core.settings import CommonSettings
from core.storage.clickhouse import connect
from core.storage.migrate import migrate
from core.unshown import FILE as UNSHOWN_FILE
from core.unshown import Unshown
from motcua import preflight
from motcua.banner import admin_key_notice, serve
from motcua.embedded_nats import start_nats, start_nats_cluster, stream_replicas
from motcua.preflight import check_before_start
from motcua.running import Running
from motcua.settings import Settings
from services.api.keys import KeyStore, admin_key_at_start
from services.api.main import ApiServer, build_app
from services.api.main import api_client as api_client_of
from services.ingest.main import start_ingest
from services.metrics.main import connect_metrics, jetstream_publisher, start_metrics

log = logging.getLogger("motcua")

SLOW_STOP_STEP = 2.0  # seconds: a stop step that takes longer is named in the log
STOP_STACKS_AFTER = 30.0  # seconds after a stop began: every thread's stack to stderr


async def prepare_storage(settings: CommonSettings) -> Client:
    client = await asyncio.to_thread(
        lambda: connect(settings.resolved_clickhouse_url(), create_database=True)
    )
    applied = await asyncio.to_thread(migrate, client, cluster=settings.clickhouse_cluster)
    if applied:
        log.info("ClickHouse migrations applied: %s", applied)
    # SQL counts working days against calendar_days: keep it equal to the shipped year files.
    written = await asyncio.to_thread(sync_calendar, client, WorkingCalendar.load())
    if written:
        log.info("working-day calendar: %d days written", written)
    return client


def _api_url(host: str, api_socket: socket.socket) -> str:
    port = api_socket.getsockname()[1]  # MOTCUA_API_PORT=0: the one the system chose
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def embedded(
    settings: Settings, *, simulate: dict[str, Any] | None = None, nats_cluster: int = 0
) -> AsyncIterator[Running]:
    """Run the whole system in this process until the context exits, then stop it cleanly.
    `nats_cluster`: that many local nats-servers as one JetStream cluster instead of one.

    Whatever can be checked is checked before any credential is created (preflight), and each
    credential is kept on disk until it is printed (`running.unshown`)."""
    api_socket = await asyncio.to_thread(check_before_start, settings, nats_cluster)
    server: EmbeddedNats | LocalCluster | None = None
    cluster: LocalCluster | None = None
    unshown = Unshown(settings.data_dir)
    clients: dict[str, NatsClient] = {}

    async def client(url: str) -> NatsClient:
        # One connection per user; with MOTCUA_NATS_URL every part shares one.
        if url not in clients:
            clients[url] = await connect_nats(url)
        return clients[url]

    try:
        # A bad plan file stops the start here, with its file and line, not at the first request;
        # later changes to the plan files are taken while running (core/plans/source.py).
        plans = PlanSource(settings.plans_dir)
        clickhouse = await prepare_storage(settings)
        writer = await asyncio.to_thread(connect, settings.resolved_clickhouse_url())
        keys = KeyStore(writer)
        bootstrap = settings.bootstrap_admin_key
        admin_key, generated = await asyncio.to_thread(
            admin_key_at_start, keys, bootstrap.get_secret_value() if bootstrap else None
        )
        if generated and admin_key:
            unshown.keep(admin_key_notice(admin_key))
        credentials_notice: str | None = None
        if settings.nats_url:
            nats_url, urls = settings.nats_url, RoleUrls.same(settings.nats_url)
        elif nats_cluster:
            cluster, urls, credentials_notice = await start_nats_cluster(
                settings, unshown, nats_cluster
            )
            server, nats_url = cluster, cluster.url
        else:
            server, urls, credentials_notice = await start_nats(settings, unshown)
            nats_url = server.url
        nc = await client(urls.admin)
        await ensure_streams(nc.jetstream(), stream_replicas(settings, nats_cluster))
        await seed_if_empty(clickhouse, nc.jetstream())
        broker, pipeline = await start_ingest(settings, urls.ingest)
        metrics_client = await asyncio.to_thread(connect_metrics, settings)
        metrics_nc = await client(urls.metrics)
        metrics = start_metrics(metrics_client, settings, plans, jetstream_publisher(metrics_nc))
        api_nc = await client(urls.api)
        # The API reads through a client the engine keeps read-only; only the key store, which
        # `POST /v1/keys` and the first start write to, has a writing client.
        api_client = api_client_of(settings, read_only=True)
        api = build_app(
            settings,
            clickhouse=api_client,
            nats=api_nc,
            keys=keys,
            plans=plans,
            ingest_stats=lambda: pipeline.stats,
            metrics_status=lambda: metrics.status,
            trigger_metrics=metrics.trigger,
            replay_dead_letters=functools.partial(replay_dead_letters, writer, nc.jetstream()),
        )
        uv = ApiServer(
            uvicorn.Config(
                api,
                host=settings.api_host,
                port=settings.api_port,
                log_level="warning",
                lifespan="off",
            )
        )
        running = Running(
            nats_url=nats_url,
            api_url=_api_url(settings.api_host, api_socket),
            clickhouse=clickhouse,
            nats=api_nc,
            api_clickhouse=api_client,
            pipeline=pipeline,
            metrics=metrics,
            nats_credentials_notice=credentials_notice,
            api_headers={"Authorization": f"Bearer {admin_key}"} if admin_key else {},
            new_admin_key=admin_key if generated else None,
            unshown=unshown,
            nats_cluster=cluster,
        )
        running.tasks += [
            asyncio.create_task(pipeline.run(), name="ingest-flusher"),
            asyncio.create_task(metrics.run(), name="metrics"),
            asyncio.create_task(uv.serve(sockets=[api_socket]), name="api"),
        ]
        simulator_stop = asyncio.Event()
        if simulate is not None:
            simulator_nc = await client(urls.simulator)
            running.tasks.append(
                asyncio.create_task(
                    _simulate(simulator_nc, simulate, simulator_stop), name="simulator"
                )
            )
        while not uv.started:
            await asyncio.sleep(0.02)
            for task in running.tasks:
                if task.done():
                    task.result()  # surface a failed start now
        try:
            yield running
        finally:
            # Asked first, cancelled too: the flag is seen between two publishes even where a
            # cancellation could be lost (see publisher._acked).
            simulator_stop.set()
            for task in running.tasks:
                if task.get_name() == "simulator":
                    task.cancel()
            await pipeline.stop()
            metrics.stop()
            uv.should_exit = True
            for task in running.tasks:
                async with _step(f"task {task.get_name()}"):
                    await asyncio.gather(task, return_exceptions=True)
            # Store and ack what was fetched while the connection is still up; anything fetched
            # after this flush stays unacked and is redelivered on the next start.
            async with _step("the ingest's last flush"):
                await pipeline.flush()
            closings = [("the ingest's subscriber", broker.stop())]
            # (numbered: a client's URL carries its password)
            closings += [
                (f"NATS connection {i}", c.drain()) for i, c in enumerate(clients.values())
            ]
            for name, closing in closings:
                try:
                    async with _step(name):
                        await closing
                except Exception as exc:  # already gone: unacked messages are redelivered
                    log.warning("while stopping: %r", exc)
    finally:
        if server:
            server.stop()
        api_socket.close()


@contextlib.asynccontextmanager
async def _step(name: str) -> AsyncIterator[None]:
    # A stop that hangs must say where: each step that takes long is named in the log (and
    # `kill -USR1` dumps every thread's stack, motcua/cli.py).
    started = asyncio.get_running_loop().time()
    try:
        yield
    finally:
        took = asyncio.get_running_loop().time() - started
        if took > SLOW_STOP_STEP:
            log.warning("stopping: %s took %.1f s", name, took)


async def _simulate(nc: NatsClient, options: dict[str, Any], stop: asyncio.Event) -> None:
    from tools.simulator.publisher import run_simulator

    try:
        await run_simulator(nc.jetstream(), stop=stop, now=lambda: datetime.now(UTC), **options)
    except asyncio.CancelledError:
        stop.set()
        raise


async def run_until_signal(
    settings: Settings, simulate: dict[str, Any] | None, nats_cluster: int = 0
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with embedded(settings, simulate=simulate, nats_cluster=nats_cluster) as running:
            await serve(settings, running, stop)
            # A stop is bounded step by step; if one still hangs, every thread's stack goes to
            # stderr (once, the process goes on stopping): where it waits, for the report.
            with contextlib.suppress(io.UnsupportedOperation, ValueError):  # stderr no file
                faulthandler.dump_traceback_later(STOP_STACKS_AFTER)
    except preflight.StartRefused:
        raise  # before any credential was created: its one line says it all
    except BaseException:
        kept = settings.data_dir / UNSHOWN_FILE
        if kept.exists():
            print(
                f"Thông tin đăng nhập chưa hiện được giữ trong {kept} (mode 0600) và sẽ hiện ở "
                "lần `motcua up` sau chạy được. The credentials not shown yet are kept there "
                "and shown by the next start that gets this far.",
                file=sys.stderr,
                flush=True,
            )
        raise
    print("Đã dừng.", flush=True)
