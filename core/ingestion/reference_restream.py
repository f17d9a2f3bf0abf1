"""Refill the reference tables from MOTCUA_REFERENCE (`motcua replay --from-stream`).

The live subscriber's durable consumer has long acked what a fresh store needs; a temporary
consumer of our own reads the whole stream (kept forever: no max_age) in stream order, through the
same processor and writer, so later versions still win and stored records are skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from core.ingestion.processor import DeadLetter
from core.ingestion.reference import ReferenceRow, meta_of, process_reference
from core.ingestion.reference_writer import ReferenceWriter
from core.messaging.nats_auth import connect_options, servers
from schemas.subjects import REFERENCE_STREAM, REFERENCE_SUBJECTS


@dataclass
class RestreamCount:
    stored: int = 0
    duplicates: int = 0  # already stored, or superseded within a batch
    dead_lettered: int = 0


async def restream_reference(
    nats_url: str, writer: ReferenceWriter, batch: int = 1_000
) -> RestreamCount:
    count = RestreamCount()
    nc = await nats.connect(servers(nats_url), **connect_options(nats_url))
    try:
        js = nc.jetstream()
        try:
            total = (await js.stream_info(REFERENCE_STREAM)).state.messages
        except NotFoundError:  # a server set up before reference data existed
            return count
        sub = await js.pull_subscribe(
            REFERENCE_SUBJECTS,
            stream=REFERENCE_STREAM,
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
            except (NatsTimeout, TimeoutError):
                break
            results = [process_reference(m.data, meta_of(m)) for m in msgs]
            rows = [r for r in results if isinstance(r, ReferenceRow)]
            dead = [r for r in results if isinstance(r, DeadLetter)]
            outcome = await asyncio.to_thread(writer.write, rows, dead)
            for m in msgs:
                await m.ack()
            seen += len(msgs)
            count.stored += outcome.stored
            count.duplicates += outcome.duplicates + outcome.superseded
            count.dead_lettered += len(dead) + len(outcome.refused)
    finally:
        await nc.drain()
    return count
