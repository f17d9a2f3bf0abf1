"""Pull → validate → accumulate → one insert → ack, with the insert overlapping the next fetches.

Three failures, three answers:
- an invalid event is dead-lettered (table + DLQ stream) with its reason and bytes, then acked;
- ClickHouse down: nothing is acked, deadlines are extended and the insert retried until it works;
- our own bug: the flusher raises, the process stops loudly, and JetStream redelivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from nats.aio.msg import Msg

from core.ingestion.batch import (
    IngestStats,
    Pending,
    delivery,
    extend_deadlines,
    refused_letters,
)
from core.ingestion.common import DeadLetter, MessageMeta, StoreUnavailable
from core.ingestion.dedup import RecentEvents, Sorted, sort_out
from core.ingestion.processor import EventRow, process
from core.ingestion.quota import DeadLetterQuota
from core.ingestion.writer import EventWriter, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")
DeadLetterPublisher = Callable[[Sequence[DeadLetter]], Awaitable[None]]


class IngestPipeline:
    def __init__(
        self,
        writer: EventWriter,
        publish_dead_letters: DeadLetterPublisher,
        *,
        flush_rows: int = 10_000,
        flush_interval: float = 0.2,
        max_pending: int = 30_000,
        ack_wait: float = 60.0,
        recent_capacity: int = 500_000,
        dead_letter_bytes_per_day: int = 256 * 1024 * 1024,
    ) -> None:
        self._writer = writer
        self._publish_dead_letters = publish_dead_letters
        self._flush_rows = flush_rows
        self._flush_interval = flush_interval
        self._max_pending = max_pending
        self._ack_wait = ack_wait
        self._recent = RecentEvents(recent_capacity)
        self._quota = DeadLetterQuota(dead_letter_bytes_per_day)
        self._pending: list[Pending] = []
        self._oldest = 0.0  # when the oldest pending message was added (monotonic)
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._feed: Callable[[], Coroutine[Any, Any, None]] | None = None
        self.stats = IngestStats()

    def feed_from(self, pull: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `pull` (the consumer's loop, which calls add()) alongside the flusher in run()."""
        self._feed = pull

    async def add(self, messages: Sequence[Msg]) -> None:
        """Validate and queue messages; waits while too many are pending (back-pressure)."""
        pending = self._pending
        now = time.monotonic()
        if not pending:
            self._oldest = now
        for msg in messages:
            stream_seq, deliveries, stored_at = delivery(msg)
            meta = MessageMeta(msg.subject, stream_seq, stored_at)
            pending.append(Pending(msg, process(msg.data, meta), deliveries > 1, now))
        self.stats.received += len(messages)
        self.stats.pending = len(self._pending)
        if len(self._pending) >= self._flush_rows:
            self._wakeup.set()
        while len(self._pending) >= self._max_pending and not self._stopping:
            self._drained.clear()
            await self._drained.wait()

    async def run(self) -> None:
        """The flusher (one insert at a time, on size or on time) and the feed, until stop().

        Pulling stops with the flusher: what was fetched but not yet added stays unacked and is
        redelivered. A crashed feed stops run() loudly, like a crashed flush.
        """
        # The dead-letter quota before the first message arrives (a day's dead letters, whatever
        # the history). A stop meanwhile ends the start at once (nothing was fetched yet),
        # waiting only for the query in flight (issue 14, finding 7). Nothing else is loaded:
        # the store answers, per flush, whether an event is stored (issue 17).
        loading = asyncio.ensure_future(self._load_memory())
        stop = asyncio.ensure_future(self._stop_requested.wait())
        await asyncio.wait({loading, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not loading.done():
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            return
        loading.result()
        feed = asyncio.create_task(self._feed(), name="ingest-pull") if self._feed else None
        try:
            while not self._stopping:
                # The interval bounds how long a message waits, not the pause after a flush:
                # what arrived while an insert ran is flushed as soon as it has waited that long
                # (at 5,000 events/s an insert takes a few hundred ms, and pausing after it
                # again added as much to every event's publish-to-queryable time).
                wait = self._flush_interval
                if self._pending:
                    wait -= time.monotonic() - self._oldest
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), wait)
                self._wakeup.clear()
                if feed and feed.done():
                    feed.result()
                    feed = None  # a feed that simply ended: nothing more will arrive
                await self.flush()
        finally:
            if feed:
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)

    async def _load_memory(self) -> None:
        since = self._quota.day_start()
        self._quota.start(
            await self._retry_store([], lambda: self._writer.dead_letter_bytes_since(since))
        )

    async def flush(self) -> None:
        items, self._pending = self._pending, []
        self.stats.pending = 0
        self._drained.set()
        if items:
            await self._flush(items)

    async def stop(self) -> None:
        """Flush what is pending, then stop; unflushed messages are simply redelivered later."""
        self._stopping = True
        self._stop_requested.set()
        self._wakeup.set()
        self._drained.set()

    async def _flush(self, items: list[Pending]) -> None:
        # While this process works on them, JetStream must not hand the messages to another
        # ingest process sharing the durable: their ack_wait is restarted every quarter of it.
        lease = asyncio.create_task(self._keep_leased(items), name="ingest-lease")
        try:
            await self._flush_leased(items)
        finally:
            lease.cancel()
            await asyncio.gather(lease, return_exceptions=True)

    async def _flush_leased(self, items: list[Pending]) -> None:
        started = time.perf_counter()
        found = await self._dedup(items)
        if self._lease_may_have_lapsed(items):
            # Another process may have been handed these messages meanwhile (this one stalled,
            # or could not reach NATS) and stored them: ask the store again, now that the
            # leases were restarted, rather than trust the answer from before.
            self.stats.lease_rechecks += 1
            await extend_deadlines(items)
            found = await self._dedup(items)
        rows, dead = found.rows, self._quota.keep(found.dead)
        result = await self._write_until_stored(items, rows, dead)
        if result.rejected:
            refused = refused_letters(items, result.rejected)
            await self._write_until_stored(items, [], refused)
            dead = [*dead, *refused]
        try:
            if dead:
                await self._publish_dead_letters(dead)
            for item in items:
                await item.msg.ack()
        except Exception as exc:  # NATS went away: all is stored, redelivery will find it there
            log.warning(
                "could not ack %d stored messages (%s); they will be redelivered", len(items), exc
            )
        refused_rows = {id(row) for row, _ in result.rejected}
        self._recent.add(
            k for row, k in zip(rows, found.keys, strict=True) if id(row) not in refused_rows
        )
        seconds = time.perf_counter() - started
        self.stats.count(result.stored, dead, found.duplicates, seconds)

    async def _dedup(self, items: list[Pending]) -> Sorted:
        """The rows to store, the dead letters and the copies dropped (core/ingestion/dedup.py:
        the recent memory, the stored-ids filter and the redelivery lookup)."""

        def ask(call: Callable[[], T]) -> Awaitable[T]:
            return self._retry_store(items, call)

        found = await sort_out(items, self._recent, self._writer, ask)
        self.stats.history_lookups += found.history_lookups
        return found

    async def _keep_leased(self, items: list[Pending]) -> None:
        period = self._ack_wait / 4
        while True:
            await asyncio.sleep(period)
            if await extend_deadlines(items):
                now = time.monotonic()
                for item in items:
                    item.leased_at = now

    def _lease_may_have_lapsed(self, items: list[Pending]) -> bool:
        # Half of ack_wait: the lookup's answer is then at most that old when the insert starts,
        # with the other half left for the insert before JetStream could redeliver.
        oldest = min((i.leased_at for i in items), default=time.monotonic())
        return time.monotonic() - oldest >= self._ack_wait / 2

    async def _write_until_stored(
        self, items: list[Pending], rows: list[EventRow], dead: list[DeadLetter]
    ) -> WriteResult:
        """Write until the store has taken it all; after a failed attempt, `write_again`."""
        tried: set[str] = set()
        failed = False

        def write() -> WriteResult:
            nonlocal failed
            if failed:
                return self._writer.write_again(rows, dead, tried)
            failed = True  # until this attempt returns
            result = self._writer.write(rows, dead)
            failed = False
            return result

        return await self._retry_store(items, write)

    async def _retry_store(self, items: list[Pending], call: Callable[[], T]) -> T:
        """Run a blocking store call in a thread until the store takes it.

        An outage only delays: the messages stay unacked, their ack deadlines are extended so
        JetStream does not hand them to anyone else meanwhile, and fetching pauses through
        back-pressure because the flusher is busy here.
        """
        delay = 0.25
        since_progress = 0.0
        while True:
            try:
                return await asyncio.to_thread(call)
            except StoreUnavailable as exc:
                self.stats.store_outages += 1
                log.warning(
                    "ClickHouse unavailable, %d messages held unacked, retrying in %.1fs: %s",
                    len(items),
                    delay,
                    exc,
                )
            await asyncio.sleep(delay)
            since_progress += delay
            delay = min(delay * 2, 5.0)
            if since_progress >= self._ack_wait / 4:
                since_progress = 0.0
                await extend_deadlines(items)
