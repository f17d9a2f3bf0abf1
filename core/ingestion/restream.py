"""Refill a store from the JetStream streams (`motcua replay --from-stream`), e.g. a fresh one:
events from MOTCUA_EVENTS, reference data from MOTCUA_REFERENCE, through one reading loop.

A temporary consumer of our own reads the whole stream once in stream order, so the live
ingest's durable position is untouched, through the same pure processors and writer as ingest
(so later reference versions still win and stored records are skipped). Only what a stream
still retains can be read back (events: max_age; reference data is kept forever); the events
table is the long-term record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from core.ingestion.common import DeadLetter, meta_of
from core.ingestion.processor import EventRow, process
from core.ingestion.reference import ReferenceRow, process_reference
from core.ingestion.writer import EventWriter, ReferenceWriter
from core.messaging.urls import connect_options, servers
from schemas.subjects import EVENTS_STREAM, EVENTS_SUBJECTS, REFERENCE_STREAM, REFERENCE_SUBJECTS

# One batch read: stores it (processor + writer), returns nothing; the loop acks it afterwards.
Store = Callable[[list[Msg]], Awaitable[None]]


async def _read_stream(
    nats_url: str,
    stream: str,
    subjects: str,
    batch: int,
    store: Store,
    progress: Callable[[int, int], None] | None = None,
    *,
    missing_ok: bool = False,
) -> None:
    """Read every retained message of `stream` once, `batch` at a time, store then ack each
    batch. `missing_ok`: a stream that does not exist reads as empty."""
    nc = await nats.connect(servers(nats_url), **connect_options(nats_url))
    try:
        js = nc.jetstream()
        try:
            total = (await js.stream_info(stream)).state.messages
        except NotFoundError:  # a server set up before this stream existed
            if missing_ok:
                return
            raise
        sub = await js.pull_subscribe(
            subjects,
            stream=stream,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                inactive_threshold=60.0,  # the server removes it soon after we stop
            ),
        )
        seen = 0
        while seen < total:
            try:
                msgs = await sub.fetch(batch, timeout=2)
            # nats-py's fetch() of more than one message can also raise the builtin
            # TimeoutError (services/ingest/consumer.py): both mean nothing more came.
            except (NatsTimeout, TimeoutError):
                break
            await store(msgs)
            for m in msgs:
                await m.ack()
            seen += len(msgs)
            if progress:
                progress(min(seen, total), total)
        await sub.unsubscribe()
    finally:
        await nc.drain()


async def restream(
    nats_url: str,
    writer: EventWriter,
    progress: Callable[[int, int, str], None] | None = None,
    batch: int = 5_000,
) -> tuple[int, int]:
    """Read every retained event once; returns (stored, dead-lettered)."""
    stored = dead = 0

    async def store(msgs: list[Msg]) -> None:
        nonlocal stored, dead
        rows: list[EventRow] = []
        letters: list[DeadLetter] = []
        for m in msgs:
            result = process(m.data, meta_of(m))
            if isinstance(result, EventRow):
                rows.append(result)
            else:
                letters.append(result)
        outcome = await asyncio.to_thread(writer.write, rows, letters)
        stored += outcome.stored
        dead += len(letters) + len(outcome.rejected)

    def told(seen: int, total: int) -> None:
        if progress:
            progress(seen, total, "events from the stream")

    await _read_stream(nats_url, EVENTS_STREAM, EVENTS_SUBJECTS, batch, store, told)
    return stored, dead


@dataclass
class RestreamCount:
    stored: int = 0
    duplicates: int = 0  # already stored, or superseded within a batch
    dead_lettered: int = 0


async def restream_reference(
    nats_url: str, writer: ReferenceWriter, batch: int = 1_000
) -> RestreamCount:
    """Read the whole reference stream once, in stream order (later versions win)."""
    count = RestreamCount()

    async def store(msgs: list[Msg]) -> None:
        results = [process_reference(m.data, meta_of(m)) for m in msgs]
        rows = [r for r in results if isinstance(r, ReferenceRow)]
        dead = [r for r in results if isinstance(r, DeadLetter)]
        outcome = await asyncio.to_thread(writer.write, rows, dead)
        count.stored += outcome.stored
        count.duplicates += outcome.duplicates + outcome.superseded
        count.dead_lettered += len(dead) + len(outcome.refused)

    await _read_stream(
        nats_url, REFERENCE_STREAM, REFERENCE_SUBJECTS, batch, store, missing_ok=True
    )
    return count
