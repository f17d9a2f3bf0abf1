"""The benchmark's events and its publisher, which runs as a process of its own like an integrator.

Events are ordered in time: event i occurred at START + i ms. A reader can then tell how far ingest
has got from one cheap `max(occurred_at)`, because the pipeline stores the stream in order (one
consumer, one insert at a time), so the newest visible event implies every earlier one.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import nats

from tests.helpers import VN, received, resolved

START = datetime(2026, 3, 2, 8, 0, tzinfo=VN)
START_MS = int(START.timestamp() * 1000)
AGENCIES = ("STNMT", "SXD", "SKHDT", "UBND_NHATRANG")
CHANNELS = ("online", "online", "direct", "postal")
DOMAINS = ("dat_dai", "xay_dung", "dang_ky_kinh_doanh", "ho_tich")
# A dossier is resolved this many dossiers after it was received: most inserts fold both new and
# older dossiers, as live traffic does.
RESOLVE_LAG = 500

Message = tuple[str, bytes, str]  # subject, body, event_id (= Nats-Msg-Id)


def dossier_of(i: int) -> tuple[str, str]:
    """(agency_code, dossier_id) of event i."""
    k = i // 2
    if i % 2 == 0:
        return _agency(k), f"HS{k:07d}"
    if k >= RESOLVE_LAG:
        return _agency(k - RESOLVE_LAG), f"HS{k - RESOLVE_LAG:07d}"
    return _agency(k), f"HX{k:07d}"


def make_events(n: int) -> list[Message]:
    """n events, alternately a new dossier received and an older one resolved."""
    out: list[Message] = []
    for i in range(n):
        at = START + timedelta(milliseconds=i)
        k = i // 2
        agency, dossier = dossier_of(i)
        if i % 2 == 1 and k >= RESOLVE_LAG:
            event = resolved(agency, dossier, at)
        else:
            event = received(
                agency,
                dossier,
                at,
                due=at + timedelta(days=3 + k % 10),
                channel=CHANNELS[k % len(CHANNELS)],
                domain=DOMAINS[k % len(DOMAINS)],
                fee=k % 3 == 0,
            )
        subject = f"motcua.events.{event['agency_code']}.{event['type']}"
        out.append((subject, json.dumps(event).encode(), event["event_id"]))
    return out


def _agency(k: int) -> str:
    return AGENCIES[k % len(AGENCIES)]


async def publish_all(js: Any, events: list[Message], rate: float | None) -> dict[str, Any]:
    """Publish with js.publish_async, as fast as possible or paced at `rate` events/s.

    Returns the wall-clock time of every send (time.time(), comparable across processes).
    """
    sent_at = [0.0] * len(events)
    first = time.time()
    for i, (subject, body, event_id) in enumerate(events):
        if rate is not None:
            wait = first + i / rate - time.time()
            if wait > 0.001:
                await asyncio.sleep(wait)
        sent_at[i] = time.time()
        await js.publish_async(subject, body, headers={"Nats-Msg-Id": event_id})
    sent = time.time()
    await js.publish_async_completed()
    return {"first": first, "sent": sent, "acked": time.time(), "sent_at": sent_at}


async def publisher_main(url: str, n: int, rate: float | None, out: str) -> None:
    """The child process: build events, say `ready`, wait for `go` on stdin, publish, report."""
    events = make_events(n)
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=20_000)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time()
    result = await publish_all(js, events, rate)
    result["cpu"] = time.process_time() - cpu
    await nc.drain()
    with open(out, "w") as f:
        json.dump(result, f)
