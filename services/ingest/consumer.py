"""The FastStream JetStream subscriber that feeds the pipeline, and the dead-letter publisher."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub

from schemas.subjects import DLQ_STREAM, EVENTS_STREAM, EVENTS_SUBJECTS, dead_letter_subject
from services.ingest.pipeline import IngestPipeline
from services.ingest.processor import DeadLetter
from services.ingest.settings import IngestSettings


async def _raw_bodies(msg: Any) -> Any:
    # The pipeline validates the bytes itself (to dead-letter what fails); skip FastStream's
    # JSON decoding of every message.
    return msg.body


def subscribe(broker: NatsBroker, pipeline: IngestPipeline, settings: IngestSettings) -> None:
    """Register the durable batch pull consumer on every event subject."""

    @broker.subscriber(
        EVENTS_SUBJECTS,
        stream=JStream(EVENTS_STREAM, declare=False),
        durable=settings.ingest_durable,
        pull_sub=PullSub(
            batch_size=settings.ingest_fetch_batch,
            timeout=settings.ingest_fetch_timeout,
            batch=True,
        ),
        config=ConsumerConfig(
            ack_wait=settings.ingest_ack_wait,
            max_ack_pending=settings.max_ack_pending,
            # Unlimited on purpose: invalid events are dead-lettered and acked, never retried, so
            # deliveries only repeat after a crash or an outage, and those must never drop data.
            max_deliver=-1,
        ),
        # MANUAL: the pipeline acks after the insert returned. FastStream's default would term()
        # every message of a batch on any exception, losing it during a ClickHouse outage.
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_bodies,
        title="motcua-ingest",
        description="Validates every event, stores it in ClickHouse, dead-letters the invalid.",
    )
    async def on_events(body: list[bytes], msg: NatsMessage) -> None:
        await pipeline.add(msg.raw_message)


def dead_letter_publisher(broker: NatsBroker) -> Any:
    async def publish(dead: Sequence[DeadLetter]) -> None:
        for d in dead:
            await broker.publish(
                d.raw,
                dead_letter_subject(d.agency_code),
                stream=DLQ_STREAM,
                headers={
                    # One DLQ entry per original message, however often it is redelivered.
                    "Nats-Msg-Id": f"dlq-{d.meta.stream_seq}",
                    "Motcua-Reason": d.reason,
                    "Motcua-Detail": d.detail[:1000],
                    "Motcua-Subject": d.meta.subject,
                    "Motcua-Stream-Seq": str(d.meta.stream_seq),
                },
            )

    return publish
