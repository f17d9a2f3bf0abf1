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
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from nats.aio.msg import Msg

from core.ingestion.processor import (
    PAYLOAD,
    DeadLetter,
    EventRow,
    MessageMeta,
    payload_digest,
    process,
)
from core.ingestion.quota import DeadLetterQuota
from core.ingestion.writer import EventWriter, StoreUnavailable, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")
DeadLetterPublisher = Callable[[Sequence[DeadLetter]], Awaitable[None]]


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    flushes: int = 0
    store_outages: int = 0
    history_lookups: int = 0  # first deliveries the store knew and the recent memory did not
    lease_rechecks: int = 0  # flushes asked again: their ack_wait may have run out meanwhile
    last_flush_at: datetime | None = None
    last_flush_seconds: float = 0.0
    pending: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)  # not frozen: its __init__ runs for every message
class _Item:
    msg: Msg
    result: EventRow | DeadLetter
    redelivered: bool
    # When its ack_wait last (re)started, as far as this process knows (monotonic): when it was
    # added, or renewed. JetStream's clock started a little earlier, at delivery, while the
    # message waited in the consumer's buffer; the re-check's margin (half the ack_wait)
    # covers that.
    leased_at: float


class RecentEvents:
    """event_id → payload digest of the most recently stored events, bounded.

    Only a shortcut: it answers "stored, with this content" for events this process stored,
    which stays true whatever other ingest processes do; every event it does not know is looked
    up in the store (EventWriter.stored_digests), so nothing here decides that an event is new.
    Bounded by its capacity, not by the history, and not loaded at start-up: it fills as this
    process stores (before issue 17 it was loaded from the store, a sort of every stored
    event's ingest time).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, event_id: str) -> bytes | None:
        return self._items.get(event_id)

    def add(self, stored: Iterable[tuple[str, bytes]]) -> None:
        items = self._items
        for event_id, digest in stored:
            if event_id in items:
                items.move_to_end(event_id)
            items[event_id] = digest
        while len(items) > self._capacity:
            items.popitem(last=False)


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
        self._pending: list[_Item] = []
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
            stream_seq, deliveries, stored_at = _delivery(msg)
            meta = MessageMeta(msg.subject, stream_seq, stored_at)
            pending.append(_Item(msg, process(msg.data, meta), deliveries > 1, now))
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

    async def _flush(self, items: list[_Item]) -> None:
        # While this process works on them, JetStream must not hand the messages to another
        # ingest process sharing the durable: their ack_wait is restarted every quarter of it.
        lease = asyncio.create_task(self._keep_leased(items), name="ingest-lease")
        try:
            await self._flush_leased(items)
        finally:
            lease.cancel()
            await asyncio.gather(lease, return_exceptions=True)

    async def _flush_leased(self, items: list[_Item]) -> None:
        started = time.perf_counter()
        rows, keys, dead, duplicates = await self._dedup(items)
        if self._lease_may_have_lapsed(items):
            # Another process may have been handed these messages meanwhile (this one stalled,
            # or could not reach NATS) and stored them: ask the store again, now that the
            # leases were restarted, rather than trust the answer from before.
            self.stats.lease_rechecks += 1
            await _extend_deadlines(items)
            rows, keys, dead, duplicates = await self._dedup(items)
        dead = self._quota.keep(dead)
        result = await self._write_until_stored(items, rows, dead)
        if result.rejected:
            refused = [
                DeadLetter(
                    meta=_meta_of(row),
                    agency_code=row.event.agency_code,
                    reason="storage_refused",
                    detail=why,
                    raw=_raw_of(items, row),
                    source=row.event.source,
                    event_id=str(row.event.event_id),
                )
                for row, why in result.rejected
            ]
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
            k for row, k in zip(rows, keys, strict=True) if id(row) not in refused_rows
        )
        self._count(result.stored, dead, duplicates, time.perf_counter() - started)

    async def _dedup(
        self, items: list[_Item]
    ) -> tuple[list[EventRow], list[tuple[str, bytes]], list[DeadLetter], int]:
        """Drop events already stored (same id, same content); dead-letter a same id with other
        content, which is an integrator bug that must not silently overwrite a stored fact.

        Returns the rows to store with their (event_id, payload digest), the dead letters and
        the number of duplicates dropped."""
        redelivered_ids = [
            str(i.result.event.event_id)
            for i in items
            if i.redelivered and isinstance(i.result, EventRow)
        ]
        stored_before: dict[str, bytes] = {}
        if redelivered_ids:
            found = await self._retry_store(
                items, lambda: self._writer.stored_payloads(redelivered_ids)
            )
            stored_before = {k: payload_digest(v) for k, v in found.items()}
            if found:
                # Stored, but perhaps not folded into state and rollups if the process died
                # mid-insert: finish those inserts (a no-op when they were complete).
                await self._retry_store(items, lambda: self._writer.refold(list(found)))
        stored_before.update(await self._stored_long_ago(items))
        rows: list[EventRow] = []
        keys: list[tuple[str, bytes]] = []
        dead: list[DeadLetter] = []
        batch: dict[str, bytes] = {}
        duplicates = 0
        recent = self._recent
        for item in items:
            result = item.result
            if isinstance(result, DeadLetter):
                dead.append(result)
                continue
            event_id = str(result.event.event_id)
            digest = result.digest
            known = batch.get(event_id) or recent.get(event_id) or stored_before.get(event_id)
            if known is None:
                batch[event_id] = digest
                rows.append(result)
                keys.append((event_id, digest))
            elif known == digest:
                duplicates += 1
            else:
                dead.append(_conflict(item, result))
        return rows, keys, dead, duplicates

    async def _stored_long_ago(self, items: list[_Item]) -> dict[str, bytes]:
        """event_id → stored digest for first deliveries the recent memory does not know: all
        asked of the store, which every ingest process writes to, so a copy is recognised
        whichever process stored the original and however long ago."""
        recent = self._recent
        fresh = list(
            {
                i.result.event.event_id
                for i in items
                if not i.redelivered
                and isinstance(i.result, EventRow)
                and recent.get(str(i.result.event.event_id)) is None
            }
        )
        if not fresh:
            return {}
        found = await self._retry_store(items, lambda: self._writer.stored_digests(fresh))
        self.stats.history_lookups += len(found)
        return found

    async def _keep_leased(self, items: list[_Item]) -> None:
        period = self._ack_wait / 4
        while True:
            await asyncio.sleep(period)
            if await _extend_deadlines(items):
                now = time.monotonic()
                for item in items:
                    item.leased_at = now

    def _lease_may_have_lapsed(self, items: list[_Item]) -> bool:
        # Half of ack_wait: the lookup's answer is then at most that old when the insert starts,
        # with the other half left for the insert before JetStream could redeliver.
        oldest = min((i.leased_at for i in items), default=time.monotonic())
        return time.monotonic() - oldest >= self._ack_wait / 2

    async def _write_until_stored(
        self, items: list[_Item], rows: list[EventRow], dead: list[DeadLetter]
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

    async def _retry_store(self, items: list[_Item], call: Callable[[], T]) -> T:
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
                await _extend_deadlines(items)

    def _count(self, stored: int, dead: list[DeadLetter], duplicates: int, seconds: float) -> None:
        s = self.stats
        s.stored += stored
        s.dead_lettered += len(dead)
        s.duplicates += duplicates
        s.flushes += 1
        s.last_flush_at = datetime.now(UTC)
        s.last_flush_seconds = seconds
        for d in dead:
            s.by_reason[d.reason] = s.by_reason.get(d.reason, 0) + 1


def _delivery(msg: Msg) -> tuple[int, int, datetime]:
    """(stream sequence, times delivered, when JetStream stored it) from the ack subject.

    What nats-py's `msg.metadata` reads, without building its two frozen dataclasses for every
    message: `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>`,
    or the v2 form with `<domain>.<account hash>.` after `$JS.ACK.` and a token at the end.
    """
    tokens = msg.reply.split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        first = 4
    elif len(tokens) >= 11 and tokens[0] == "$JS" and tokens[1] == "ACK":
        first = 6
    else:  # not a form we know: let nats-py parse it, or say why it cannot
        md = msg.metadata
        return md.sequence.stream, md.num_delivered, md.timestamp or datetime.now(UTC)
    stored_at = datetime.fromtimestamp(int(tokens[first + 3]) / 1e9, UTC)
    return int(tokens[first + 1]), int(tokens[first]), stored_at


async def _extend_deadlines(items: list[_Item]) -> bool:
    """Restart the messages' ack_wait; False when NATS could not be told (then they may be
    redelivered, to this process or another, and the store lookup absorbs the copy)."""
    try:
        for item in items:
            await item.msg.in_progress()
    except Exception as exc:  # NATS down too: the messages will simply be redelivered
        log.warning("could not extend ack deadlines: %s", exc)
        return False
    return True


def _meta_of(row: EventRow) -> MessageMeta:
    v = row.values
    return MessageMeta(subject=v[24], stream_seq=v[25], published_at=v[26])


def _raw_of(items: list[_Item], row: EventRow) -> bytes:
    for item in items:
        if item.result is row:
            return bytes(item.msg.data)
    payload: str = row.values[PAYLOAD]
    return payload.encode()


def _conflict(item: _Item, row: EventRow) -> DeadLetter:
    return DeadLetter(
        meta=_meta_of(row),
        agency_code=row.event.agency_code,
        reason="conflicting_duplicate",
        detail=f"event_id {row.event.event_id} was already stored with different content",
        raw=bytes(item.msg.data),
        source=row.event.source,
        event_id=str(row.event.event_id),
    )
