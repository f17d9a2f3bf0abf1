"""The API process: built from its settings (services/api/settings.py), the FastAPI app of
services/api/app.py served by uvicorn on a socket taken before anything else, until asked to
stop.

`api_client`, `build_app` and `ApiServer` are also what `motcua up` serves its API with, in its
one process (motcua/embedded.py), where the app gets the live status of the ingest and metrics
running beside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import uvicorn
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient

from core.messaging.client import connect_nats, nats_ready
from core.plans.model import Plan
from core.plans.source import PlanSource
from core.storage.clickhouse import connect
from core.storage.pool import pooled
from services.api.app import create_app
from services.api.cache import PageCache
from services.api.deps import ApiContext
from services.api.keys import KeyStore
from services.api.settings import ApiSettings

log = logging.getLogger("motcua")


class ApiServer(uvicorn.Server):
    # The process that runs it owns SIGINT/SIGTERM and stops every component in order; uvicorn
    # must not install its own handlers and re-raise the signal afterwards.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_client(settings: ApiSettings, *, read_only: bool = False) -> Client:
    """The pool of clients the API's queries run through, each held to the API's limits."""
    return pooled(
        lambda: connect(
            settings.resolved_clickhouse_url(), read_only=read_only, limits=settings.api_limits()
        ),
        settings.api_query_concurrency,
    )


def build_app(
    settings: ApiSettings,
    *,
    clickhouse: Client,
    nats: NatsClient,
    keys: KeyStore,
    plans: Mapping[str, Plan],
    **live: Any,
) -> FastAPI:
    """The app on these clients; `live`: the rest of ApiContext, where ingest and metrics run in
    the same process (their status, a trigger, the dead letters' replay)."""
    return create_app(
        ApiContext(
            clickhouse=clickhouse,
            nats_ready=nats_ready(nats),
            keys=keys,
            clock=lambda: datetime.now(UTC),
            plans=plans,
            page_cache=PageCache(settings.api_page_cache_seconds),
            admission=settings.api_admission(),
            export_max_rows=settings.api_export_max_rows,
            completeness_threshold=settings.completeness_threshold,
            completeness_cache=settings.api_completeness_cache(),
            **live,
        )
    )


async def run(
    settings: ApiSettings,
    nats_url: str,
    *,
    stop_on_signal: Callable[[], asyncio.Event],
    listen: Callable[[str, int], socket.socket],
) -> None:
    """`motcua api`: serve until the event `stop_on_signal` makes is set. `listen` takes the
    API's socket (motcua/preflight.py bind_api: a busy port is one line and its exit code)."""
    nc = await connect_nats(nats_url)
    client = api_client(settings)
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
    # Loaded here, so a bad plan file stops the start as it does for `motcua metrics`.
    plans = PlanSource(settings.plans_dir)
    app = build_app(settings, clickhouse=client, nats=nc, keys=keys, plans=plans)
    # Stopped by our handler, like the other services: uvicorn's own re-raises the signal after
    # its shutdown, and the process died of it (exit -2 / 143, a KeyboardInterrupt traceback).
    stop = stop_on_signal()
    server = ApiServer(
        uvicorn.Config(app, host=settings.api_host, port=settings.api_port, lifespan="off")
    )
    api_socket = listen(settings.api_host, settings.api_port)
    serving = asyncio.create_task(server.serve(sockets=[api_socket]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
    await nc.drain()
