"""Several ingest pipelines bound to one durable consumer, one store: every event stored once.

chDB opens a data directory in one process only, so the "processes" here are pipelines in one
process, each with its own NATS connection, sharing the session's store as ingest processes
share a ClickHouse server. What they share is all the dedup may rely on: nothing passes from
one pipeline's memory to another's.

The script (ack_wait 2 s):
1. A fetches a batch X once, looks it up (not stored), then stalls before storing it while its
   lease heartbeats are lost (as when it cannot reach NATS); C fetches a batch Y once, stores
   it and dies before its ack.
2. B and D start on the durable: JetStream redelivers X and Y to them; Y is found stored, X is
   stored, once.
3. A wakes up: its answer for X is older than half the ack_wait, so it asks the store again
   and absorbs X instead of storing it a second time.
4. Copies of X and Y are republished without Nats-Msg-Id (as an integrator's re-sync outside
   the duplicate window), some with other content (one with another occurred_at), with new
   events Z: B and D share them; copies are absorbed or dead-lettered whichever stored the
   original.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

import nats
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from core.ingestion.batch import Pending
from core.ingestion.common import DeadLetter
from core.ingestion.processor import EventRow
from core.ingestion.writer import EventWriter, WriteResult
from core.messaging.nats_server import EmbeddedNats
from schemas.subjects import EVENTS_STREAM
from services.ingest.consumer import EventConsumer, consumer_config
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings
from tests.helpers import eventually, received, resolved
from tests.test_pipeline import d

pytestmark = pytest.mark.asyncio(loop_scope="session")

ACK_WAIT = 2.0
X, Y, Z = 60, 40, 50


class StallingWriter(EventWriter):
    """Answers its first lookup as the store stood, then holds that answer until released."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.stalled = threading.Event()
        self.release = threading.Event()

    def stored_digests(self, event_ids: Sequence[UUID]) -> dict[str, bytes]:
        answer = super().stored_digests(event_ids)
        if not self.stalled.is_set():
            self.stalled.set()
            self.release.wait(timeout=120)
        return answer


class LeaseLost(IngestPipeline):
    async def _keep_leased(self, items: list[Pending]) -> None:
        return None  # its in_progress never reaches NATS


class DiesBeforeAck(IngestPipeline):
    async def _write_until_stored(
        self, items: list[Pending], rows: list[EventRow], dead: list[DeadLetter]
    ) -> WriteResult:
        await super()._write_until_stored(items, rows, dead)
        raise RuntimeError("killed after the insert, before the ack")


def _publishable(agency: str, n: int, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n // 2):
        out += [
            received(agency, f"{prefix}{i}", d(2), due=d(9)),
            resolved(agency, f"{prefix}{i}", d(4)),
        ]
    return out


async def _publish(nc: NatsClient, agency: str, events: list[dict[str, Any]]) -> None:
    js = nc.jetstream()
    for e in events:  # no Nats-Msg-Id: the stream's duplicate window cannot help
        await js.publish(f"motcua.events.{agency}.{e['type']}", json.dumps(e).encode())


def _fetch_once(nc: NatsClient, durable: str, n: int, pipeline: IngestPipeline) -> Any:
    """A feed that takes `n` messages from the durable, hands them on, and pulls no more."""

    async def feed() -> None:
        sub = await nc.jetstream().pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)
        got: list[Msg] = []
        while len(got) < n:
            got += await sub.fetch(n - len(got), timeout=10)
        await pipeline.add(got)

    return feed


def _pipeline(
    cls: type[IngestPipeline], writer: EventWriter, dead: list[DeadLetter], **kw: Any
) -> IngestPipeline:
    async def publish(letters: Sequence[DeadLetter]) -> None:
        dead.extend(letters)

    return cls(writer, publish, flush_rows=500, flush_interval=0.05, ack_wait=ACK_WAIT, **kw)


async def test_pipelines_sharing_a_durable_store_every_event_once(
    own_nats: tuple[EmbeddedNats, NatsClient], clickhouse: Client, agency: str
) -> None:
    # Catches: a copy recognised only by the memory of the process that stored the original
    # (a per-process filter: copies landing on another process stored again); a stalled
    # process storing what JetStream meanwhile gave another one; a redelivery after a crash
    # between insert and ack stored again; a conflicting copy with another occurred_at stored.
    server, nc = own_nats
    durable = f"scale-{uuid.uuid4().hex[:8]}"
    settings = IngestSettings(
        ingest_durable=durable,
        ingest_ack_wait=ACK_WAIT,
        ingest_fetch_batch=100,
        ingest_flush_rows=500,
        ingest_processes=4,
    )
    await nc.jetstream().add_consumer(EVENTS_STREAM, consumer_config(settings))
    conns = [await nats.connect(server.url) for _ in range(4)]
    dead: list[DeadLetter] = []
    stalling = StallingWriter(clickhouse)
    a = _pipeline(LeaseLost, stalling, dead)
    c = _pipeline(DiesBeforeAck, EventWriter(clickhouse), dead)
    b = _pipeline(IngestPipeline, EventWriter(clickhouse), dead, recent_capacity=0)
    d_ = _pipeline(IngestPipeline, EventWriter(clickhouse), dead)
    tasks: list[asyncio.Task[None]] = []
    try:
        xs, ys = _publishable(agency, X, "X"), _publishable(agency, Y, "Y")
        await _publish(nc, agency, xs)
        a.feed_from(_fetch_once(conns[0], durable, X, a))
        tasks.append(asyncio.create_task(a.run()))
        await eventually(stalling.stalled.is_set)

        await _publish(nc, agency, ys)
        c.feed_from(_fetch_once(conns[1], durable, Y, c))
        with pytest.raises(RuntimeError, match="before the ack"):
            await asyncio.wait_for(c.run(), 30)
        assert c.stats.stored == 0  # it never got to count them: stored, never acked

        for p, conn in ((b, conns[2]), (d_, conns[3])):
            consumer = EventConsumer(p, settings)
            p.feed_from(lambda consumer=consumer, conn=conn: consumer.run(conn))
            tasks.append(asyncio.create_task(p.run()))
        await eventually(lambda: b.stats.stored + d_.stats.stored == X, timeout=30)
        await eventually(lambda: b.stats.duplicates + d_.stats.duplicates >= Y, timeout=30)

        stalling.release.set()
        await eventually(lambda: a.stats.flushes == 1, timeout=30)
        assert (a.stats.stored, a.stats.duplicates, a.stats.lease_rechecks) == (0, X, 1)

        zs = _publishable(agency, Z, "Z")
        exact = xs[::2] + ys[::2]
        conflicting = [
            {**xs[1], "source": "resync-other-content"},
            {**ys[1], "occurred_at": d(3).isoformat()},
        ]
        await _publish(nc, agency, exact + conflicting + zs)
        handled = lambda: sum(p.stats.received for p in (b, d_))  # noqa: E731
        total = X + Y + len(exact) + len(conflicting) + Z
        await eventually(
            lambda: handled() >= total and b.stats.pending == d_.stats.pending == 0, timeout=30
        )
        await eventually(lambda: b.stats.stored + d_.stats.stored == X + Z, timeout=30)
        await eventually(
            lambda: sum(p.stats.dead_lettered for p in (b, d_)) == len(conflicting), timeout=30
        )
        assert b.stats.duplicates + d_.stats.duplicates >= Y + len(exact)
    finally:
        stalling.release.set()
        for p in (a, b, d_):
            await p.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in conns:
            await conn.close()

    count, distinct = clickhouse.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE agency_code = {a:String}",
        parameters={"a": agency},
    ).result_rows[0]
    assert (count, distinct) == (X + Y + Z, X + Y + Z)
    assert sorted(x.reason for x in dead) == ["conflicting_duplicate"] * 2


async def test_the_durable_follows_the_number_of_processes(
    own_nats: tuple[EmbeddedNats, NatsClient],
) -> None:
    # Catches: a durable created for one process kept as it is after MOTCUA_INGEST_PROCESSES
    # grew (every process then shares one process's room), or its position lost on the update.
    _, nc = own_nats
    js = nc.jetstream()
    durable = f"grow-{uuid.uuid4().hex[:8]}"
    one = IngestSettings(ingest_durable=durable)
    three = IngestSettings(ingest_durable=durable, ingest_processes=3, ingest_ack_wait=90)
    await EventConsumer(cast(IngestPipeline, None), one)._ensure_consumer(nc)
    created = await js.consumer_info(EVENTS_STREAM, durable)
    assert created.config.max_ack_pending == one.max_ack_pending
    await EventConsumer(cast(IngestPipeline, None), three)._ensure_consumer(nc)
    updated = await js.consumer_info(EVENTS_STREAM, durable)
    assert updated.config.max_ack_pending == three.max_ack_pending == 3 * one.max_ack_pending
    assert updated.config.ack_wait == 90
    assert updated.delivered.stream_seq == created.delivered.stream_seq
    await js.delete_consumer(EVENTS_STREAM, durable)
