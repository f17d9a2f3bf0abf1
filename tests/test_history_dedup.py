"""Republished copies of events stored long ago: absorbed or dead-lettered, never stored twice.

`motcua up` runs as a subprocess with its recent-events memory turned off
(MOTCUA_INGEST_RECENT_EVENTS=0), which is where any event stands once half a million newer ones
were stored, or when another ingest process stored it: only the store's lookup (`event_ids`,
migration 0029) can recognise a copy.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from core.messaging.nats_server import EmbeddedNats, free_port
from tests.helpers import eventually, received, resolved
from tests.test_outages import _api, _up
from tests.test_pipeline import d

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGENCY = "OLDCOPY"
DOSSIERS = 150
EXACT, CONFLICTING = 40, 10


async def _publish(js: JetStreamContext, events: list[dict[str, Any]]) -> None:
    # No Nats-Msg-Id: the stream's duplicate window cannot help, as with an integrator's re-sync.
    for e in events:
        await js.publish(f"motcua.events.{AGENCY}.{e['type']}", json.dumps(e).encode())


async def _settled(port: int, received_total: int) -> dict[str, Any]:
    """The ingest's counters once it has handled `received_total` messages."""
    body: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal body
        body = await _api(port, "/v1/pipeline") or {}
        ingest = body.get("ingest") or {}
        handled = ingest.get("stored", 0) + ingest.get("duplicates", 0)
        return (
            ingest.get("received", 0) >= received_total
            and ingest.get("pending") == 0
            and handled + ingest.get("dead_lettered", 0) >= received_total
        )

    await eventually(done, timeout=60)
    return body


async def test_copies_of_events_the_ingest_no_longer_remembers(
    tmp_path: Path, own_nats: tuple[EmbeddedNats, NatsClient]
) -> None:
    # Catches: a republish without Nats-Msg-Id of an event stored before the recent memory
    # reaches back, stored a second time (double-counted until a merge) or, with other content,
    # silently replacing the stored fact instead of being dead-lettered as conflicting.
    server, nc = own_nats
    js = nc.jetstream()
    port = free_port()
    proc: subprocess.Popen[bytes] | None = None
    try:
        originals: list[dict[str, Any]] = []
        for i in range(DOSSIERS):
            originals += [
                received(AGENCY, f"H{i}", d(2), due=d(9, 17)),
                resolved(AGENCY, f"H{i}", d(5)),
            ]
        copies = originals[:EXACT] + [
            {**e, "source": "resync-with-other-content"}
            for e in originals[EXACT : EXACT + CONFLICTING]
        ]
        total = len(originals)

        proc = _up(tmp_path / "data", server.url, port, MOTCUA_INGEST_RECENT_EVENTS="0")
        await _publish(js, originals)
        first = await _settled(port, total)
        assert first["ingest"]["stored"] == total
        await _publish(js, copies)
        after = (await _settled(port, total + len(copies)))["ingest"]
        assert (after["stored"], after["duplicates"]) == (total, EXACT)
        assert after["by_reason"] == {"conflicting_duplicate": CONFLICTING}
        assert after["history_lookups"] == len(copies)

        # A new process, with nothing in memory: the same copies, the same answers.
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        proc = _up(tmp_path / "data", server.url, port, MOTCUA_INGEST_RECENT_EVENTS="0")
        await _settled(port, 0)
        await _publish(js, copies)
        again = (await _settled(port, len(copies)))["ingest"]
        assert (again["stored"], again["duplicates"]) == (0, EXACT)
        assert again["by_reason"] == {"conflicting_duplicate": CONFLICTING}

        body = await _api(port, "/v1/pipeline")
        assert body["events_stored"] == total
        assert body["last_hour"]["events"] == body["last_hour"]["distinct_events"] == total
        conflicts = [
            x["count"] for x in body["dead_letters"] if x["reason"] == "conflicting_duplicate"
        ]
        assert conflicts == [2 * CONFLICTING]
        on_time = await _api(
            port, f"/v1/metrics/on_time_rate?from=2026-03-01&to=2026-03-31&agency={AGENCY}"
        )
        assert on_time["groups"][0]["numerator"] == on_time["groups"][0]["denominator"] == DOSSIERS
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
