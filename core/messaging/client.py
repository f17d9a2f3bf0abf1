"""A long-lived NATS client of a process: connected to every server a URL names, for ever, and
the readiness check a health endpoint asks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client as NatsClient

from core.messaging.urls import connect_options, servers

log = logging.getLogger("motcua")


async def connect_nats(url: str) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        log.warning("NATS: %s", exc)

    # Every server of the list (MOTCUA_NATS_URL may name a cluster's): a lost one is replaced
    # by any other that is up, for ever.
    return await nats.connect(
        servers(url),
        name="motcua",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        **connect_options(url),
    )


def nats_ready(nc: NatsClient) -> Callable[[], Awaitable[bool]]:
    """Whether the connection is up and the server answers (a flush within a second)."""

    async def ready() -> bool:
        if not nc.is_connected:
            return False
        try:
            await nc.flush(timeout=1)
        except Exception:
            return False
        return True

    return ready
