"""Ingest of reference data: the pure processor, and the JetStream subscriber that stores it.

Reference records (schemas/v1/reference.py) are few and rarely published, so they take a plain
FastStream batch pull subscriber, beside the events' high-throughput consumer on the same broker.
Same three answers to failure as for events: an invalid record is dead-lettered (table and DLQ
stream) and acked; ClickHouse down: nack with delay, nothing dead-lettered; our own bug: the
handler raises, nothing is acked, and JetStream redelivers after ack_wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

from faststream import AckPolicy, Context
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from core.ingestion.processor import DeadLetter, MessageMeta, classify, repeated_detail
from core.ingestion.writer import StoreUnavailable
from schemas.subjects import (
    MAX_EVENT_BYTES,
    REFERENCE_DEAD_LETTER_AGENCY,
    REFERENCE_STREAM,
    REFERENCE_SUBJECTS,
    parse_reference_subject,
    reference_token,
)
from schemas.v1.reference import (
    AgencyReference,
    ReferenceEvent,
    parse_reference,
    reference_code,
)
from services.ingest.consumer import dead_letter_publisher
from services.ingest.settings import IngestSettings

if TYPE_CHECKING:
    from core.ingestion.reference_writer import ReferenceWriter

log = logging.getLogger(__name__)

REFERENCE_DURABLE = "motcua-reference"
# One message per fetch, on purpose. FastStream 0.7.8's batch pull loop keeps calling fetch() to
# fill a batch until its timeout, and nats-py's fetch() of more than one message can raise the
# builtin TimeoutError, which that loop does not catch: the task dies (FastStream restarts it) and
# the messages it had gathered wait the whole ack_wait for redelivery (seen: 3 of 40 records
# delayed 60 s). A one-message fetch raises only nats' own TimeoutError and never gathers across
# calls. Reference data is small and rare; if it ever is not, use a plain pull loop like
# services/ingest/consumer.py's.
FETCH_BATCH = 1
FETCH_TIMEOUT = 1.0  # seconds a pull request waits on the server
RETRY_DELAY = 5.0  # seconds before JetStream redelivers a batch the store could not take

AGENCIES_TABLE = "agencies"
PROCEDURES_TABLE = "procedures"
# Insert column order (ingested_at is filled by ClickHouse); a drift test ties these to the tables.
_PROVENANCE = ("event_id", "occurred_at", "source", "payload", "subject", "stream_seq")
AGENCY_COLUMNS: tuple[str, ...] = (
    "agency_code",
    "valid_from",
    "valid_to",
    "name",
    "level",
    "parent_code",
    *_PROVENANCE,
    "published_at",
)
PROCEDURE_COLUMNS: tuple[str, ...] = (
    "procedure_code",
    "valid_from",
    "valid_to",
    "name",
    "domain_code",
    "processing_days",
    "processing_unit",
    "fee_bearing",
    "paper_result_required",
    "online_level",
    "full_online_eligible",
    "online_payment_integrated",
    "levels",
    "decision_date",
    "legal_basis_effective_date",
    "public_in_national_db_at",
    "parts_complete",
    *_PROVENANCE,
    "published_at",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    AGENCIES_TABLE: AGENCY_COLUMNS,
    PROCEDURES_TABLE: PROCEDURE_COLUMNS,
}


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    record: ReferenceEvent
    table: str  # agencies | procedures
    values: tuple[Any, ...]  # in COLUMNS[table] order
    raw: bytes  # the message as received, for a dead letter should the store refuse the row

    @property
    def event_id(self) -> str:
        return str(self.record.event_id)

    @property
    def key(self) -> tuple[str, date]:
        """(code, valid_from): a record with the same key replaces the earlier one."""
        return reference_code(self.record), self.record.valid_from


def process_reference(raw: bytes, meta: MessageMeta) -> ReferenceRow | DeadLetter:
    """Validate one reference message and turn it into a row, or say why not. No I/O, no clock."""

    def refuse(reason: str, detail: str, record: ReferenceEvent | None = None) -> DeadLetter:
        return DeadLetter(
            meta=meta,
            agency_code=REFERENCE_DEAD_LETTER_AGENCY,
            reason=reason,
            detail=detail,
            raw=raw,
            source=record.source if record else "",
            event_id=str(record.event_id) if record else None,
        )

    if len(raw) > MAX_EVENT_BYTES:
        return refuse("oversized", f"{len(raw)} bytes; the limit is {MAX_EVENT_BYTES}")
    parts = parse_reference_subject(meta.subject)
    if parts is None:
        return refuse(
            "bad_subject",
            f"subject {meta.subject!r} is not motcua.reference.<agency|procedure>.<code>",
        )
    try:
        record = parse_reference(raw)
    except ValidationError as exc:
        reason, detail = classify(exc)
        if (repeat := repeated_detail(raw, None, reason)) is not None:
            return refuse("invalid_json", repeat)
        return refuse(reason, detail)
    if (repeat := repeated_detail(raw, record)) is not None:
        return refuse("invalid_json", repeat, record)
    if record.type != f"reference.{parts.kind}":
        return refuse(
            "type_mismatch", f"payload type {record.type!r} ≠ subject kind {parts.kind!r}", record
        )
    code = reference_code(record)
    if reference_token(code) != parts.token:
        return refuse(
            "code_mismatch",
            f"payload code {code!r} ≠ subject code {parts.token!r} (dots become '_')",
            record,
        )
    return to_row(record, meta, raw)


def to_row(record: ReferenceEvent, meta: MessageMeta, raw: bytes) -> ReferenceRow:
    table = AGENCIES_TABLE if isinstance(record, AgencyReference) else PROCEDURES_TABLE
    fields = record.__dict__
    provenance = {
        "event_id": record.event_id,
        "occurred_at": record.occurred_at.astimezone(UTC),
        "payload": record.model_dump_json(),
        "subject": meta.subject,
        "stream_seq": meta.stream_seq,
        "published_at": meta.published_at.astimezone(UTC),
    }
    values = tuple(
        provenance[c] if c in provenance else _column_value(fields[c]) for c in COLUMNS[table]
    )
    return ReferenceRow(record=record, table=table, values=values, raw=raw)


def _column_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_column_value(v) for v in value]
    return value


# The subscriber -------------------------------------------------------------------------------

DeadLetterPublisher = Callable[[Sequence[DeadLetter]], Awaitable[None]]


def reference_dead_letter_publisher(broker: NatsBroker) -> DeadLetterPublisher:
    """The events' DLQ publisher with its own Nats-Msg-Id space ('dlq-ref-<seq>')."""
    publish: DeadLetterPublisher = dead_letter_publisher(broker, id_prefix="dlq-ref")
    return publish


async def store_batch(
    msgs: Sequence[Msg], writer: ReferenceWriter, publish_dead_letters: DeadLetterPublisher
) -> None:
    """Process, store, dead-letter, then ack; nack with delay while the store is down."""
    results = [process_reference(m.data, meta_of(m)) for m in msgs]
    rows = [r for r in results if isinstance(r, ReferenceRow)]
    dead = [r for r in results if isinstance(r, DeadLetter)]
    try:
        outcome = await asyncio.to_thread(writer.write, rows, dead)
    except StoreUnavailable as exc:
        log.warning("store unavailable, %d reference records wait: %s", len(msgs), exc)
        for m in msgs:
            await m.nak(delay=RETRY_DELAY)
        return
    try:
        if dead or outcome.refused:
            await publish_dead_letters([*dead, *outcome.refused])
        for m in msgs:
            await m.ack()
    except Exception as exc:  # NATS went away: all is stored, redelivery finds it there
        log.warning("could not ack %d stored reference records: %r", len(msgs), exc)


def meta_of(msg: Msg) -> MessageMeta:
    md = msg.metadata
    return MessageMeta(msg.subject, md.sequence.stream, md.timestamp or datetime.now(UTC))


async def _raw_bodies(msg: Any) -> Any:
    return msg.body  # validated by process_reference, which dead-letters what fails


def subscribe_reference(
    broker: NatsBroker,
    writer: ReferenceWriter,
    settings: IngestSettings,
    inbox_prefix: bytes = b"_INBOX.",
) -> None:
    """Register the durable batch pull consumer of MOTCUA_REFERENCE on `broker` (before it
    starts). The writer is blocking and runs in a thread, on a client of its own. Its pulled
    messages arrive under `inbox_prefix` (FastStream does not take the connection's)."""
    publish_dead = reference_dead_letter_publisher(broker)

    @broker.subscriber(
        REFERENCE_SUBJECTS,
        stream=JStream(REFERENCE_STREAM, declare=False),
        durable=REFERENCE_DURABLE,
        pull_sub=PullSub(batch_size=FETCH_BATCH, timeout=FETCH_TIMEOUT, batch=True),
        inbox_prefix=inbox_prefix,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=settings.ingest_ack_wait,
            # Invalid records are dead-lettered and acked, so only outages repeat deliveries.
            max_deliver=-1,
        ),
        # MANUAL: ack only after the insert returned (FastStream's default would term() the
        # whole batch on any exception, losing it during a ClickHouse outage).
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_bodies,
        title="motcua-reference",
        description="Stores agency and procedure reference records; dead-letters the invalid.",
    )
    async def on_reference(
        body: list[bytes], msg: Annotated[NatsBatchMessage, Context("message")]
    ) -> None:
        await store_batch(msg.raw_message, writer, publish_dead)
