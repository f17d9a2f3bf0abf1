"""Refill a store from the JetStream stream (`motcua replay --from-stream`), e.g. a fresh one.

Uses a temporary consumer of its own, so the live ingest's durable position is untouched, and
the same pure processor and writer as ingest. Only what the stream still retains (max_age) can be
read back; the events table is the long-term record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from core.ingestion.processor import DeadLetter, EventRow, MessageMeta, process
from core.ingestion.writer import EventWriter
from core.messaging.nats_auth import connect_options, servers
from schemas.subjects import EVENTS_STREAM, EVENTS_SUBJECTS


async def restream(
    nats_url: str,
    writer: EventWriter,
    progress: Callable[[int, int, str], None] | None = None,
    batch: int = 5_000,
) -> tuple[int, int]:
    """Read every retained event once; returns (stored, dead-lettered)."""
    nc = await nats.connect(servers(nats_url), **connect_options(nats_url))
    try:
        js = nc.jetstream()
        total = (await js.stream_info(EVENTS_STREAM)).state.messages
        sub = await js.pull_subscribe(
            EVENTS_SUBJECTS,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                inactive_threshold=60.0,  # the server removes it soon after we stop
            ),
        )
        seen = stored = dead = 0
        while seen < total:
            try:
                msgs = await sub.fetch(batch, timeout=2)
            except NatsTimeout:
                break
            rows: list[EventRow] = []
            letters: list[DeadLetter] = []
            for m in msgs:
                md = m.metadata
                meta = MessageMeta(m.subject, md.sequence.stream, md.timestamp)
                result = process(m.data, meta)
                (rows if isinstance(result, EventRow) else letters).append(result)  # type: ignore[arg-type]
            outcome = await asyncio.to_thread(writer.write, rows, letters)
            for m in msgs:
                await m.ack()
            seen += len(msgs)
            stored += outcome.stored
            dead += len(letters) + len(outcome.rejected)
            if progress:
                progress(min(seen, total), total, "events from the stream")
        await sub.unsubscribe()
        return stored, dead
    finally:
        await nc.drain()
