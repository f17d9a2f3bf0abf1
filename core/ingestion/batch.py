"""The bookkeeping of the events' flushes (services/ingest/pipeline.py runs the loop): a pending
message, the ingest's counters, a delivery's metadata, the leases, the letters of refused rows.

Nothing heavy is imported at run time: messages are only used, never built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.ingestion.common import DeadLetter
from core.ingestion.processor import EventRow

if TYPE_CHECKING:
    from nats.aio.msg import Msg

log = logging.getLogger(__name__)


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

    def count(self, stored: int, dead: list[DeadLetter], duplicates: int, seconds: float) -> None:
        """One flush done."""
        self.stored += stored
        self.dead_lettered += len(dead)
        self.duplicates += duplicates
        self.flushes += 1
        self.last_flush_at = datetime.now(UTC)
        self.last_flush_seconds = seconds
        for d in dead:
            self.by_reason[d.reason] = self.by_reason.get(d.reason, 0) + 1


@dataclass(slots=True)  # not frozen: its __init__ runs for every message
class Pending:
    """A message added to the pipeline and not yet acked, with what the processor made of it."""

    msg: Msg
    result: EventRow | DeadLetter
    redelivered: bool
    # When its ack_wait last (re)started, as far as this process knows (monotonic): when it was
    # added, or renewed. JetStream's clock started a little earlier, at delivery, while the
    # message waited in the consumer's buffer; the re-check's margin (half the ack_wait)
    # covers that.
    leased_at: float


def delivery(msg: Msg) -> tuple[int, int, datetime]:
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
    # After `first`: <delivered>.<stream seq>.<consumer seq>.<ns>
    delivered, stream_seq, stored_ns = tokens[first], tokens[first + 1], tokens[first + 3]
    stored_at = datetime.fromtimestamp(int(stored_ns) / 1e9, UTC)
    return int(stream_seq), int(delivered), stored_at


async def extend_deadlines(items: Sequence[Pending]) -> bool:
    """Restart the messages' ack_wait; False when NATS could not be told (then they may be
    redelivered, to this process or another, and the store lookup absorbs the copy)."""
    try:
        for item in items:
            await item.msg.in_progress()
    except Exception as exc:  # NATS down too: the messages will simply be redelivered
        log.warning("could not extend ack deadlines: %s", exc)
        return False
    return True


def refused_letters(
    items: Sequence[Pending], rejected: Sequence[tuple[EventRow, str]]
) -> list[DeadLetter]:
    """Dead letters for the rows the store itself refused (`storage_refused`)."""
    return [
        DeadLetter(
            meta=row.meta,
            agency_code=row.event.agency_code,
            reason="storage_refused",
            detail=why,
            raw=_raw_of(items, row),
            source=row.event.source,
            event_id=str(row.event.event_id),
        )
        for row, why in rejected
    ]


def _raw_of(items: Sequence[Pending], row: EventRow) -> bytes:
    for item in items:
        if item.result is row:
            return bytes(item.msg.data)
    return row.payload.encode()
