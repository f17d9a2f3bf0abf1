"""Every dedup layer of the system, and why each is needed: an event is stored and counted once.

A message can come twice for many reasons (an integrator's retried publish, a JetStream
redelivery after a crash or an outage, two ingest processes handed the same message, a retried
insert, a replay after a fix), and no single layer sees them all. From the publisher to the
figures:

1. **Nats-Msg-Id** (the streams' 2-hour duplicate window, core/messaging/streams.py). A publish
   repeated inside the window is dropped by the stream itself, before anything downstream sees
   it. Integrators set it to the event_id; the reference loader too (reference_loader.py); the DLQ
   copies use `dlq-<seq>` / `dlq-ref-<seq>` (one id space per source stream: sequences restart
   at 1 per stream); a DLQ replay `<event_id>#replay` (the refused original used the event_id,
   and the stream would drop the republish). Needed: cheapest layer, and the only one for the
   DLQ stream. Not enough: only inside the window, only for publishers that set it, and blind to
   redeliveries.
2. **Recent-ids memory** (RecentEvents, per ingest process): event_id → payload digest of what
   this process stored lately. Needed: copies of recent events (the common case) are absorbed
   without a store query. Only a shortcut: it never decides that an event is new.
3. **Stored-ids filter** (`event_ids` table, migration 0029, asked by EventWriter.stored_digests
   for every first delivery the memory does not know). Needed: a copy published again outside
   the window, or stored by another ingest process sharing the durable, is recognised whatever
   the history. The reference stream's form: a record whose event_id is in its table is skipped
   (ReferenceWriter), so a redelivered older version cannot come back with a newer ingested_at
   and win over a version stored after it.
4. **Redelivery lookup** (EventWriter.stored_payloads on `events` itself, for messages delivered
   more than once). Needed: a crash or an outage between insert and ack leaves the event stored
   and unacked; its id may be in `event_ids` without the event (ids go in first), so only
   `events` can say. A stored one is refolded (EventWriter.refold) in case its views missed it.
   Layers 2-4 also dead-letter a same event_id with other content (`conflicting_duplicate`): an
   integrator bug that must not silently overwrite a stored fact.
5. **The refold** (metrics: the `*_parts` views hold idempotent aggregates, migrations 0018,
   0024, 0027, and the metrics service's `Refolder`, core/figures/refolder.py, writes the
   difference between the facts it computes and those stored). Needed: whatever reaches the
   parts twice (a refold above, a retried insert) changes no figure.
6. **Insert dedup token** (insert_deduplication_token from the batch's sorted identities, below).
   Needed: a retried insert that did reach the store, although the client saw an error, is
   dropped by the engine (the events and dead_letters tables keep a dedup window), however
   JetStream regroups the redelivered messages. After a failed write a token no attempt used is
   taken for what is still missing (`fresh`): the engine records a block's hash before its part
   is renamed into place, so a failed rename would make the same token drop a block never stored.
7. **ReplacingMergeTree** (events, event_ids, dead_letters, agencies, procedures: migrations
   0001, 0002, 0011, 0029). Needed: an exact duplicate row that every layer above let through
   still collapses on merge (agencies and procedures keep the latest ingested version).

Layers 1, 5 and 7 live where named; 2, 3, 4 and 6 are the code below (the store queries are the
writer's, core/ingestion/writer.py).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar
from uuid import UUID

from core.ingestion.batch import Pending
from core.ingestion.common import DeadLetter, StoreUnavailable
from core.ingestion.processor import EventRow, payload_digest

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

T = TypeVar("T")

# --- 1. Nats-Msg-Id ----------------------------------------------------------------------------

EVENTS_DLQ_IDS = "dlq"
REFERENCE_DLQ_IDS = "dlq-ref"


def dead_letter_msg_id(id_prefix: str, stream_seq: int) -> str:
    """One DLQ entry per original message, however often it is redelivered."""
    return f"{id_prefix}-{stream_seq}"


def replay_msg_id(event_id: str) -> str:
    return f"{event_id}#replay"


# --- 2. The recent-ids memory ------------------------------------------------------------------


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


# --- 3 and 4. The stored-ids filter and the redelivery lookup ----------------------------------


class Lookups(Protocol):
    """What the dedup asks the store (EventWriter, or a test's double of it)."""

    def stored_payloads(self, event_ids: Sequence[str]) -> dict[str, str]: ...

    def stored_digests(self, event_ids: Sequence[UUID]) -> dict[str, bytes]: ...

    def refold(self, event_ids: Sequence[str]) -> int: ...


class Ask(Protocol):
    """Runs a blocking store call until the store takes it (IngestPipeline._retry_store)."""

    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


@dataclass
class Sorted:
    """A flush's messages sorted out: the rows to store with their (event_id, payload digest),
    the dead letters, the copies dropped, and the first deliveries the store knew."""

    rows: list[EventRow] = field(default_factory=list)
    keys: list[tuple[str, bytes]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    history_lookups: int = 0


async def sort_out(
    items: Sequence[Pending], recent: RecentEvents, store: Lookups, ask: Ask
) -> Sorted:
    """Drop events already stored (same id, same content); dead-letter a same id with other
    content, which is an integrator bug that must not silently overwrite a stored fact."""
    redelivered_ids = [
        str(i.result.event.event_id)
        for i in items
        if i.redelivered and isinstance(i.result, EventRow)
    ]
    stored_before: dict[str, bytes] = {}
    if redelivered_ids:
        found = await ask(lambda: store.stored_payloads(redelivered_ids))
        stored_before = {k: payload_digest(v) for k, v in found.items()}
        if found:
            # Stored, but perhaps not folded into state and rollups if the process died
            # mid-insert: finish those inserts (a no-op when they were complete).
            await ask(lambda: store.refold(list(found)))
    # First deliveries the recent memory does not know: all asked of the store, which every
    # ingest process writes to, so a copy is recognised whichever process stored the original
    # and however long ago.
    unknown = list(
        {
            i.result.event.event_id
            for i in items
            if not i.redelivered
            and isinstance(i.result, EventRow)
            and recent.get(str(i.result.event.event_id)) is None
        }
    )
    out = Sorted()
    if unknown:
        long_ago = await ask(lambda: store.stored_digests(unknown))
        out.history_lookups = len(long_ago)
        stored_before.update(long_ago)
    batch: dict[str, bytes] = {}
    for item in items:
        result = item.result
        if isinstance(result, DeadLetter):
            out.dead.append(result)
            continue
        event_id = str(result.event.event_id)
        digest = result.digest
        known = batch.get(event_id) or recent.get(event_id) or stored_before.get(event_id)
        if known is None:
            batch[event_id] = digest
            out.rows.append(result)
            out.keys.append((event_id, digest))
        elif known == digest:
            out.duplicates += 1
        else:
            out.dead.append(_conflict(item, result))
    return out


def _conflict(item: Pending, row: EventRow) -> DeadLetter:
    return DeadLetter(
        meta=row.meta,
        agency_code=row.event.agency_code,
        reason="conflicting_duplicate",
        detail=f"event_id {row.event.event_id} was already stored with different content",
        raw=bytes(item.msg.data),
        source=row.event.source,
        event_id=str(row.event.event_id),
    )


K = TypeVar("K")
R = TypeVar("R")


def new_versions(
    rows: Sequence[R], stored: set[str], event_id: Callable[[R], str], key: Callable[[R], K]
) -> tuple[list[R], int, int]:
    """The reference stream's filter: (rows to insert in stream order, duplicates, superseded).

    A row whose event_id is stored or repeated in the batch is a duplicate; of rows with the
    same key (code, valid_from) only the last of the batch is kept."""
    fresh: dict[K, R] = {}
    seen: set[str] = set()
    duplicates = superseded = 0
    for row in rows:
        eid = event_id(row)
        if eid in stored or eid in seen:
            duplicates += 1
            continue
        seen.add(eid)
        k = key(row)
        if k in fresh:
            superseded += 1
            del fresh[k]  # re-added below, so the dict keeps stream order
        fresh[k] = row
    return list(fresh.values()), duplicates, superseded


# --- 6. The insert dedup token -----------------------------------------------------------------


def token_of(keys: Iterable[str]) -> str:
    """A dedup token from the sorted identities, so a retried batch is recognised even when
    JetStream regroups the redelivered messages differently."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def batch_token(items: Sequence[EventRow] | Sequence[DeadLetter]) -> str:
    """The token of a batch of events (their ids) or of the events' dead letters (`dl:<seq>`)."""
    return token_of(
        str(i.event.event_id) if isinstance(i, EventRow) else f"dl:{i.meta.stream_seq}"
        for i in items
    )


def fresh(token: str, tried: set[str]) -> str:
    """`token` if no earlier attempt of this batch used it, else a new one; noted in `tried`.

    The plain token while it is new: an attempt that reached the store although the client saw
    an error is then still recognised by the engine's dedup."""
    n = 0
    new = token
    while new in tried:
        n += 1
        new = f"{token}:{n}"
    tried.add(new)
    return new


def dead_letters_missing(client: Client, dead: Sequence[DeadLetter]) -> list[DeadLetter]:
    """The dead letters not in the table yet (identity: subject and stream sequence): what a
    retry still has to insert. Raises StoreUnavailable when the store cannot answer."""
    if not dead:
        return []
    try:
        found = client.query(
            "SELECT subject, stream_seq FROM dead_letters WHERE stream_seq IN {seqs:Array(UInt64)}",
            parameters={"seqs": [d.meta.stream_seq for d in dead]},
        ).result_rows
    except Exception as exc:
        raise StoreUnavailable(str(exc)) from exc
    there = {(subject, seq) for subject, seq in found}
    return [d for d in dead if (d.meta.subject, d.meta.stream_seq) not in there]
