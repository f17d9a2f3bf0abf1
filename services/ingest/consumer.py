"""The JetStream pull consumer that feeds the pipeline (the dead-letter publisher is
core/ingestion/subscriber.py's).

A continuous pull into one callback subscription, not FastStream's batch subscriber, for two
measured reasons (bench/ingest_bench.py, FastStream 0.7.8, nats-py 2.16):
- nats-py's `fetch()` wraps every message in two asyncio tasks (`next_msg` → create_task +
  wait_for): a bare fetch-and-ack loop tops out near 33,000 events/s on this machine, while
  standing pull requests delivered to a callback do about 100,000/s;
- FastStream's pull loop catches only `nats.errors.TimeoutError`, but `fetch()` also raises the
  builtin TimeoutError; the loop task then dies and the messages it had already fetched wait the
  whole ack_wait (60 s) for redelivery — seen as a 60 s latency tail at 5,000 events/s.

Flow control is by credit: at most `window` messages are requested and not yet handed to the
pipeline, and none are requested while the pipeline applies back-pressure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque

from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from schemas.subjects import EVENTS_STREAM, EVENTS_SUBJECTS
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)

# A pull request the server has not filled within this time ends (status 408); a new one
# replaces it, so a request lost with a server restart stalls the consumer for at most this long.
PULL_EXPIRES = 5.0
_STATUS = "Status"
_RETRY = 1.0  # seconds before asking again after the server refused pull requests (409)


def consumer_config(settings: IngestSettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=settings.ingest_durable,
        name=settings.ingest_durable,
        filter_subject=EVENTS_SUBJECTS,
        deliver_policy=DeliverPolicy.ALL,
        # Explicit: the pipeline acks each message after the insert that stored it returned.
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ingest_ack_wait,
        max_ack_pending=settings.max_ack_pending,
        # Unlimited on purpose: invalid events are dead-lettered and acked, never retried, so
        # deliveries only repeat after a crash or an outage, and those must never drop data.
        max_deliver=-1,
    )


class EventConsumer:
    """Pulls events from the durable consumer into the pipeline until cancelled."""

    def __init__(self, pipeline: IngestPipeline, settings: IngestSettings) -> None:
        self._pipeline = pipeline
        self._settings = settings
        self._batch = settings.ingest_fetch_batch
        # At most this many requested and not yet handed on: settings.max_ack_pending allows it.
        self._window = 2 * settings.ingest_fetch_batch
        self._requests: deque[list[float]] = deque()  # [expires at (monotonic), still due]
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()
        self._paused_until = 0.0

    async def run(self, nc: NatsClient) -> None:
        await self._ensure_consumer(nc)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=self._on_message)
        try:
            while True:
                wait = await self._top_up(nc, inbox)
                if not self._buffer:
                    try:
                        await asyncio.wait_for(self._arrived.wait(), wait)
                    except TimeoutError:
                        continue
                self._arrived.clear()
                batch, self._buffer = self._buffer, []
                if batch:
                    # Ask for the next messages first, so they arrive while these are handled.
                    await self._top_up(nc, inbox)
                    await self._pipeline.add(batch)
        finally:
            try:
                await sub.unsubscribe()
            except Exception as exc:  # connection already closed: nothing left to undo
                log.debug("unsubscribe: %r", exc)

    async def _ensure_consumer(self, nc: NatsClient) -> None:
        """Create the durable consumer when missing; an existing one follows the settings it
        may change (MOTCUA_INGEST_PROCESSES scales max_ack_pending, MOTCUA_INGEST_ACK_WAIT)."""
        js = nc.jetstream()
        wanted = consumer_config(self._settings)
        try:
            info = await js.consumer_info(EVENTS_STREAM, self._settings.ingest_durable)
        except NotFoundError:
            await js.add_consumer(EVENTS_STREAM, wanted)
            return
        if (info.config.max_ack_pending, info.config.ack_wait) == (
            wanted.max_ack_pending,
            wanted.ack_wait,
        ):
            return
        # Create-or-update: JetStream edits these two in place, position and acks kept. Every
        # process sharing the durable does the same with the same settings.
        try:
            await js.add_consumer(EVENTS_STREAM, wanted)
        except Exception as exc:  # a user without the right: the old limits still work
            log.warning("durable consumer kept as it is (could not update it: %s)", exc)
        else:
            log.info(
                "durable consumer updated: max_ack_pending %s -> %s, ack_wait %s -> %s s",
                info.config.max_ack_pending,
                wanted.max_ack_pending,
                info.config.ack_wait,
                wanted.ack_wait,
            )

    async def _top_up(self, nc: NatsClient, inbox: str) -> float:
        """Ask for more messages when there is room; returns how long to wait for them."""
        now = time.monotonic()
        while self._requests and self._requests[0][0] <= now:
            self._requests.popleft()  # expired on the server too (408), or lost
        if now < self._paused_until:
            return self._paused_until - now
        due = sum(int(r[1]) for r in self._requests)
        room = self._window - due - len(self._buffer)
        if room >= self._batch:
            request = {"batch": room, "expires": int(PULL_EXPIRES * 1e9)}
            subject = f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{self._settings.ingest_durable}"
            try:
                await nc.publish(subject, json.dumps(request).encode(), reply=inbox)
            except Exception as exc:  # disconnected: retry after a pause, nothing is lost
                log.warning("could not request messages: %r", exc)
                return 0.5
            self._requests.append([now + PULL_EXPIRES, room])
        return max(0.01, self._requests[0][0] - now) if self._requests else 0.5

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers
        if headers and _STATUS in headers and not msg.data:
            # 408: a request expired, which _top_up already accounts for by the clock. Others
            # (409: consumer deleted, leader changed…) mean pending requests are gone: ask again.
            if headers[_STATUS] != "408":
                log.warning("pull requests refused, asking again in %.0f s: %s", _RETRY, headers)
                self._requests.clear()
                self._paused_until = time.monotonic() + _RETRY
            self._arrived.set()
            return
        self._buffer.append(msg)
        if self._requests:
            head = self._requests[0]
            head[1] -= 1
            if head[1] <= 0:
                self._requests.popleft()
        self._arrived.set()


def subscribe(broker: NatsBroker, pipeline: IngestPipeline, settings: IngestSettings) -> None:
    """Have the pipeline pull from the durable consumer while it runs (IngestPipeline.run), on
    the broker's connection, which is up by then (the broker starts before the pipeline runs)."""
    consumer = EventConsumer(pipeline, settings)

    async def pull() -> None:
        await consumer.run(broker.connection)

    pipeline.feed_from(pull)
