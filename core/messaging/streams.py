"""The JetStream streams the product owns, declared once by `motcua up`/`motcua migrate`.

Services never declare streams at startup (FastStream's declare=False): they need no JetStream admin
rights, and a stray config in one process cannot rewrite the stream for all.
"""

from __future__ import annotations

import asyncio

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from schemas.subjects import (
    ALERTS_STREAM,
    ALERTS_SUBJECTS,
    DLQ_PREFIX,
    DLQ_STREAM,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    REFERENCE_STREAM,
    REFERENCE_SUBJECTS,
    STREAM_MAX_MSG_BYTES,
)

DAY = 24 * 3600


def events_stream_config() -> StreamConfig:
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=[EVENTS_SUBJECTS],
        storage=StorageType.FILE,
        # Limits retention keeps events replayable (motcua replay from the stream, DLQ fetches).
        retention=RetentionPolicy.LIMITS,
        max_age=30 * DAY,
        # Losing an event is worse than back-pressure: a full stream refuses new publishes.
        discard=DiscardPolicy.NEW,
        # Longer than any integrator's retry horizon; Nats-Msg-Id = event_id.
        duplicate_window=2 * 3600,
        max_msg_size=STREAM_MAX_MSG_BYTES,
        allow_rollup_hdrs=False,
    )


def dlq_stream_config() -> StreamConfig:
    return StreamConfig(
        name=DLQ_STREAM,
        subjects=[f"{DLQ_PREFIX}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=90 * DAY,
        # The dead_letters table is the record (motcua dlq replay reads it); this stream is a
        # copy for subscribers, so a flood of refused messages ages its oldest out instead of
        # filling the disk: 2 GiB is some 30,000 letters of the largest size.
        max_bytes=2 * 1024**3,
        discard=DiscardPolicy.OLD,
        duplicate_window=2 * 3600,
    )


def reference_stream_config() -> StreamConfig:
    return StreamConfig(
        name=REFERENCE_STREAM,
        subjects=[REFERENCE_SUBJECTS],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        # No age limit: reference data is small and must stay replayable forever, so any store
        # (a fresh one, a rebuilt one) can get the org tree and the catalogue back from here.
        max_age=0,
        discard=DiscardPolicy.NEW,
        duplicate_window=2 * 3600,  # Nats-Msg-Id = event_id
        max_msg_size=STREAM_MAX_MSG_BYTES,
        allow_rollup_hdrs=False,
    )


def alerts_stream_config() -> StreamConfig:
    return StreamConfig(
        name=ALERTS_STREAM,
        subjects=[ALERTS_SUBJECTS],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        # ClickHouse's `alerts` table is the record; the stream is for subscribers (chat bots,
        # e-mail relays) that may be offline for a while.
        max_age=90 * DAY,
        discard=DiscardPolicy.OLD,
        duplicate_window=2 * 3600,  # Nats-Msg-Id = "<alert_id>#<seq>": a retried publish is one
    )


class StreamReplicasRefused(RuntimeError):
    """JetStream refused the replica count (MOTCUA_STREAM_REPLICAS): its reason, in one line."""


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Declare (or update to this config) every stream the product owns, each with `replicas`
    copies. An R1 stream is scaled up by the update: a cluster can take over a stream that one
    server created."""
    configs = (
        events_stream_config(),
        dlq_stream_config(),
        reference_stream_config(),
        alerts_stream_config(),
    )
    for config in configs:
        assert config.name is not None
        config.num_replicas = replicas
        await _declare(js, config, replicas)


# A cluster that has just formed (or lost a node a moment ago) can still count a peer offline,
# or time out a request on its way to the meta leader: for this long that is waited out, not a
# refusal. A cluster too small for the replicas is refused at once (its reason says so).
SETTLE_SECONDS = 30.0


async def _declare(js: JetStreamContext, config: StreamConfig, replicas: int) -> None:
    assert config.name is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        try:
            try:
                await js.stream_info(config.name)
            except NotFoundError:
                await js.add_stream(config)
            else:
                await js.update_stream(config)
            return
        except (APIError, nats.errors.TimeoutError) as exc:
            offline = isinstance(exc, APIError) and "offline" in str(exc.description)
            settling = offline or isinstance(exc, nats.errors.TimeoutError)
            if replicas > 1 and settling and loop.time() < deadline:
                await asyncio.sleep(0.5)
                continue
            if replicas == 1 or not isinstance(exc, APIError):
                raise
            # "replicas > 1 not supported in non-clustered mode", "insufficient resources": the
            # server's words, which the operator can look up, without the traceback around them.
            raise StreamReplicasRefused(
                f"JetStream refused stream {config.name} with {replicas} replicas "
                f"(MOTCUA_STREAM_REPLICAS={replicas}): {exc.description} (err_code "
                f"{exc.err_code}); a stream needs as many JetStream servers in the cluster as "
                "replicas: add servers or lower MOTCUA_STREAM_REPLICAS"
            ) from None
