"""The ingest process: built from its settings (services/ingest/settings.py), a FastStream
broker pulling the events and the reference data from JetStream into the pipeline
(services/ingest/consumer.py, pipeline.py), run until asked to stop.

`start_ingest` is also what `motcua up` starts in its one process (motcua/embedded.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faststream.nats import NatsBroker
from faststream.nats.security import NatsToken, NatsUserPassword
from faststream.security import BaseSecurity

from core.ingestion.subscriber import dead_letter_publisher, subscribe_reference
from core.ingestion.writer import EventWriter, ReferenceWriter
from core.messaging.urls import connect_options, servers
from core.storage.clickhouse import connect
from services.ingest.consumer import subscribe
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings


def _broker_security(options: dict[str, Any]) -> BaseSecurity | None:
    """connect_options' credentials and CA as FastStream takes them: it refuses credentials in
    its server URLs beside a `security`, and passes these to nats-py for every server."""
    tls = options.get("tls")
    if "user" in options:
        return NatsUserPassword(options["user"], options["password"], ssl_context=tls)
    if "token" in options:
        return NatsToken(options["token"], ssl_context=tls)
    return BaseSecurity(ssl_context=tls) if tls else None


def _broker_logger() -> logging.Logger:
    # FastStream logs every batch and every consumer task at INFO; at thousands of events a
    # second that buries what an operator needs. Its warnings and errors still show.
    logger = logging.getLogger("motcua.broker")
    logger.setLevel(logging.WARNING)
    return logger


async def start_ingest(
    settings: IngestSettings, nats_url: str
) -> tuple[NatsBroker, IngestPipeline]:
    client = await asyncio.to_thread(connect, settings.resolved_clickhouse_url())
    # Per-batch "Received/Processed" lines would drown the log at thousands of events a second.
    # Replies and pulled messages arrive in the ingest user's own inbox (nats_auth.inbox_prefix).
    options = connect_options(nats_url)
    inbox = options.get("inbox_prefix", "_INBOX")
    broker = NatsBroker(
        servers(nats_url),
        inbox_prefix=inbox,
        security=_broker_security(options),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        log_level=logging.DEBUG,
        logger=_broker_logger(),
    )
    pipeline = IngestPipeline(
        EventWriter(client),
        dead_letter_publisher(broker),
        flush_rows=settings.ingest_flush_rows,
        flush_interval=settings.ingest_flush_interval,
        max_pending=settings.max_pending,
        ack_wait=settings.ingest_ack_wait,
        recent_capacity=settings.ingest_recent_events,
        dead_letter_bytes_per_day=settings.ingest_dead_letter_bytes_per_day,
    )
    subscribe(broker, pipeline, settings)
    # Reference data (agencies, procedures) on the same broker, with a client of its own.
    reference_client = await asyncio.to_thread(connect, settings.resolved_clickhouse_url())
    subscribe_reference(broker, ReferenceWriter(reference_client), settings, f"{inbox}.".encode())
    await broker.start()
    return broker, pipeline


async def run(settings: IngestSettings, nats_url: str, stop: asyncio.Event) -> None:
    """`motcua ingest`: ingest until `stop` is set, then store and ack what was fetched."""
    broker, pipeline = await start_ingest(settings, nats_url)
    flusher = asyncio.create_task(pipeline.run())
    await asyncio.wait([flusher, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    await pipeline.stop()
    await flusher
    await pipeline.flush()
    await broker.stop()
