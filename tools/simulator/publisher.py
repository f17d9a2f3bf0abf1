"""Publishes simulated traffic to JetStream: a history backfill, then live events as time passes,
with each agency's daily manifest once its day is over (tools/simulator/feed.py)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta

from nats.js import JetStreamContext
from nats.js.api import PubAck

from schemas.subjects import event_subject
from schemas.v1.events import Event
from tools.simulator.faults import FaultPlan
from tools.simulator.feed import Feed
from tools.simulator.model import Timeline, arrivals, draw_arrival
from tools.simulator.workdays import ICT

log = logging.getLogger(__name__)

# Below nats-py's default publish_async_max_pending (4000), so a window never waits on it.
PUBLISH_WINDOW = 2000
ACK_TIMEOUT_SECONDS = 30.0
HISTORY_DOSSIERS_PER_DAY = 150.0  # province-wide, per working day
TICK_SECONDS = 1.0
LOG_EVERY = timedelta(minutes=1)
# Open dossiers of the live top-up take ~260 bytes each until their last event; at high rates they
# pile up for weeks (lifecycles run to 30+ working days), so stop adding once this many are open.
MAX_OPEN_ITEMS = 500_000


async def publish_events(
    js: JetStreamContext, events: Iterable[Event], stop: asyncio.Event | None = None
) -> int:
    """Publish each event to its subject with Nats-Msg-Id = event_id; returns how many.

    Publishes are pipelined and their acks awaited per window; a failed or missing ack raises.
    Once `stop` is set, the rest is left unpublished (a backfill of years takes minutes).
    """
    count = duplicates = 0
    window: list[asyncio.Future[PubAck]] = []
    for event in events:
        if stop is not None and stop.is_set():
            break
        ack = await js.publish_async(
            event_subject(event.agency_code, event.type),
            event.model_dump_json().encode(),
            headers={"Nats-Msg-Id": str(event.event_id)},
            wait_stall=ACK_TIMEOUT_SECONDS,
        )
        window.append(ack)
        count += 1
        if len(window) >= PUBLISH_WINDOW:
            duplicates += await _acked(window)
            window = []
    duplicates += await _acked(window)
    if duplicates:
        log.info("%d of %d events were already in the stream (same event_id)", duplicates, count)
    return count


async def _acked(window: list[asyncio.Future[PubAck]]) -> int:
    """Wait for a window's acks; the number of duplicates.

    Not js.publish_async_completed(): it neither raises a publish error (e.g. a full stream) nor
    times out, and publish_async itself never times out a lost ack.
    """
    if not window:
        return 0
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that arrives
    # as the acks complete, and the simulator then published on after Ctrl-C.
    async with asyncio.timeout(ACK_TIMEOUT_SECONDS):
        acks = await asyncio.gather(*window)
    return sum(1 for ack in acks if ack.duplicate)


async def republish_lost(js: JetStreamContext, feed: Feed, until: datetime) -> int:
    """Send the lost batches of the days over by `until`: the gap they left closes (their events
    keep their ids, so a batch that did arrive after all is a duplicate)."""
    events = feed.take_lost(until)
    if events:
        log.info("republishing %d events of lost batches", len(events))
    return await publish_events(js, events)


def history_start(started: datetime, history_days: int) -> datetime:
    """The simulated world's first instant: the local midnight `history_days` before `started`.
    A whole day, so a restart the same day regenerates the same world and sends the same
    manifests (duplicates), not new versions of them."""
    first = (started - timedelta(days=history_days)).astimezone(ICT).date()
    return datetime.combine(first, time(), ICT)


async def run_simulator(
    js: JetStreamContext,
    *,
    seed: int,
    history_days: int,
    rate_per_second: float | None = None,
    stop: asyncio.Event,
    now: Callable[[], datetime],
    dossiers_per_day: float = HISTORY_DOSSIERS_PER_DAY,
    tick_seconds: float = TICK_SECONDS,
    max_open_items: int = MAX_OPEN_ITEMS,
    faults: FaultPlan | None = None,
) -> None:
    """Backfill `history_days`, then publish live traffic until `stop`.

    Live traffic is the history's own arrivals continuing in real time (`dossiers_per_day` per
    working day, in office hours), with their pending events released as their time comes. With
    `rate_per_second`, extra arrivals top it up to about that many events per second: a faster
    demo, whose current month then holds far more dossiers than the history's (at 20 events/s,
    four times a month's worth in a day). Backfill and the history's continuation are
    deterministic for a seed, so a restart republishes duplicates, not new dossiers; the top-up is
    not (its dossiers have fresh ids each run). Each day's manifests are sent with them, made
    from everything simulated (the sources' register), and `faults` withhold some of it.
    """
    started = now()
    start = history_start(started, history_days)
    plan = faults or FaultPlan()
    feed = Feed(start.date(), plan.at(started))
    for line in feed.faults.describe():
        log.warning("simulated fault: %s", line)
    republish_at = None if plan.republish_after is None else started + plan.republish_after
    timeline = Timeline()
    timeline.add(arrivals(seed, start, started, dossiers_per_day))
    count = await publish_events(js, feed.send(timeline.release(started), started), stop)
    if stop.is_set():
        log.info("backfill stopped after %d events", count)
        return
    log.info(
        "backfill: %d events over %d days up to %s; %d dossiers and feedback items still open",
        count,
        history_days,
        started.isoformat(),
        len(timeline),
    )
    top_up = random.Random(f"{seed}:live:{started.isoformat()}")
    # Events still owed to reach the rate. Bounded both ways to a minute's worth, so a clock jump
    # (a laptop waking up) or a burst of due history neither floods nor starves the stream for long.
    rate = rate_per_second or 0.0
    budget, bound = 0.0, rate * 60
    published, last, last_log, capped = 0, started, started, False
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), tick_seconds)
            break
        except TimeoutError:
            pass
        current = now()
        if current <= last:
            continue  # the wall clock stepped back: wait for it to pass `last` again
        timeline.add(arrivals(seed, last, current, dossiers_per_day))
        due = timeline.release(current)
        elapsed = (current - last).total_seconds()
        budget = max(-bound, min(bound, budget + rate * elapsed) - len(due))
        room = max_open_items - len(timeline)
        if budget >= 1 and room <= 0 and not capped:
            log.warning("live: %d items open, no more top-up until some close", len(timeline))
        capped = room <= 0
        extra = min(int(budget), room)
        if extra > 0:  # each new arrival's first event (received or filed) is due right now
            timeline.add(draw_arrival(top_up, current) for _ in range(extra))
            due += timeline.release(current)
            budget -= extra
        published += await publish_events(js, feed.send(due, current), stop)
        if republish_at is not None and current >= republish_at:
            published += await republish_lost(js, feed, current)
        last = current
        if current - last_log >= LOG_EVERY:
            log.info("live: %d events published, %d items open", published, len(timeline))
            last_log = current
    log.info("simulator stopped: %d live events published", published)
