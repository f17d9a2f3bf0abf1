"""The NATS side of ingest that is not the events' pull loop: the dead-letter publisher both
streams use, and the reference stream's subscriber.

Reference records (schemas/v1/reference.py) are few and rarely published, so they take a plain
FastStream batch pull subscriber, beside the events' high-throughput consumer on the same broker
(services/ingest/consumer.py). Same three answers to failure as for events: an invalid record is
dead-lettered (table and DLQ stream) and acked; ClickHouse down: nack with delay, nothing
dead-lettered; our own bug: the handler raises, nothing is acked, and JetStream redelivers after
ack_wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Protocol

from faststream import AckPolicy, Context
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from core.ingestion.common import DeadLetter, StoreUnavailable, meta_of
from core.ingestion.dedup import EVENTS_DLQ_IDS, REFERENCE_DLQ_IDS, dead_letter_msg_id
from core.ingestion.reference import ReferenceRow, process_reference
from core.ingestion.writer import ReferenceWriter
from schemas.subjects import (
    DLQ_STREAM,
    REFERENCE_STREAM,
    REFERENCE_SUBJECTS,
    dead_letter_subject,
)

log = logging.getLogger(__name__)

DeadLetterPublisher = Callable[[Sequence[DeadLetter]], Awaitable[None]]

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


class AckWait(Protocol):
    """The one setting the subscriber takes from the ingest's (IngestSettings)."""

    @property
    def ingest_ack_wait(self) -> float: ...


def dead_letter_publisher(broker: NatsBroker, id_prefix: str = EVENTS_DLQ_IDS) -> Any:
    """Copies dead letters to the DLQ stream. Each source stream needs its own `id_prefix`:
    stream sequences restart at 1 per stream, and equal Nats-Msg-Ids would collide in the DLQ
    stream's duplicate window (dedup.py, layer 1)."""

    async def publish(dead: Sequence[DeadLetter]) -> None:
        for d in dead:
            await broker.publish(
                d.raw,
                dead_letter_subject(d.agency_code),
                stream=DLQ_STREAM,
                headers={
                    # One DLQ entry per original message, however often it is redelivered.
                    "Nats-Msg-Id": dead_letter_msg_id(id_prefix, d.meta.stream_seq),
                    "Motcua-Reason": d.reason,
                    "Motcua-Detail": d.detail[:1000],
                    "Motcua-Subject": d.meta.subject,
                    "Motcua-Stream-Seq": str(d.meta.stream_seq),
                },
            )

    return publish


def reference_dead_letter_publisher(broker: NatsBroker) -> DeadLetterPublisher:
    """The events' DLQ publisher with its own Nats-Msg-Id space ('dlq-ref-<seq>')."""
    publish: DeadLetterPublisher = dead_letter_publisher(broker, id_prefix=REFERENCE_DLQ_IDS)
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


async def _raw_bodies(msg: Any) -> Any:
    return msg.body  # validated by process_reference, which dead-letters what fails


def subscribe_reference(
    broker: NatsBroker,
    writer: ReferenceWriter,
    settings: AckWait,
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
