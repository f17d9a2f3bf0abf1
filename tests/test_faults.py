"""Fault injection with figures (issue 6, "Nothing lost, nothing double-counted").

Real components only: a nats-server this test starts (JetStream file store on disk), `motcua up`
as a subprocess (chDB in a temporary directory), real HTTP. Each test publishes a seeded stream
(duplicates, conflicting copies, invalid events, out-of-order and very late events included),
injects its fault while the stream flows, waits until the durable consumer has nothing left
pending or unacked, then compares what was stored with what the published data implies, computed
here independently: the raw tables read back from the chDB directory after a clean stop, and the
figures through the API. Each test reports a figures line (tests/fault_figures.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import PubAck

from core.messaging.nats_server import EmbeddedNats, free_port
from core.messaging.streams import ensure_streams
from schemas.subjects import EVENTS_STREAM
from tests.fault_figures import report
from tests.helpers import VN, eventually, received, resolved

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[1]
DURABLE = "motcua-ingest"
MAIN_MONTH = 10  # October 2026: most dossiers
LATE_MONTH = 3  # March 2026: "very late" dossiers, published at the tail, months after
CHANNELS = ("online", "direct", "postal")


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=VN)


# ---------------------------------------------------------------------------------------------
# The stream: seeded, with what it implies computed at the same time


@dataclass
class Message:
    subject: str
    data: bytes
    msg_id: str | None  # None: published without Nats-Msg-Id, so only the ingest can dedup it
    kind: str  # "event" | "duplicate" | "conflict" | "invalid"
    event_id: str


@dataclass
class Expected:
    received: int = 0
    online: int = 0
    finished: int = 0
    on_time: int = 0  # early or on time: resolved on or before the due date (09:00 < 17:00)


@dataclass
class Stream:
    messages: list[Message]
    unique: set[str]  # every valid event id, to be stored exactly once
    conflicting: set[str]  # ids republished with other content: dead-lettered, never stored
    invalid: int
    duplicates: int
    dossiers: int
    figures: dict[tuple[str, int], Expected] = field(default_factory=dict)


def _message(event: dict[str, Any], kind: str, msg_id: str | None) -> Message:
    return Message(
        subject=f"motcua.events.{event['agency_code']}.{event['type']}",
        data=json.dumps(event).encode(),
        msg_id=msg_id,
        kind=kind,
        event_id=event["event_id"],
    )


def build_stream(
    seed: int,
    total: int,
    agencies: tuple[str, ...],
    *,
    duplicates: int,
    conflicts: int,
    invalid: int,
    late_share: float = 0.02,
) -> Stream:
    """`total` messages: unique valid events, then exact copies (half with the original
    Nats-Msg-Id, which the stream drops; half without, which the ingest must drop), conflicting
    copies (same event_id, other `source`, no Nats-Msg-Id) and invalid events (naive time).

    A fifth of the dossiers have their resolution published before their receipt; `late_share`
    of them belong to March and are published after everything else."""
    rng = random.Random(seed)
    target = total - duplicates - conflicts - invalid
    keyed: list[tuple[float, Message]] = []
    figures: dict[tuple[str, int], Expected] = {}
    originals: list[tuple[float, dict[str, Any]]] = []
    count = dossiers = 0
    while count < target:
        late = rng.random() < late_share
        month = LATE_MONTH if late else MAIN_MONTH
        agency = rng.choice(agencies)
        day, due_day = rng.randint(1, 24), 0
        due_day = day + rng.randint(1, 4)
        channel = rng.choices(CHANNELS, weights=(6, 3, 1))[0]
        dossier = f"F{seed}-{dossiers:06d}"
        key = dossiers + (total if late else 0)
        events = [
            (
                float(key),
                received(
                    agency, dossier, at(month, day), due=at(month, due_day, 17), channel=channel
                ),
            )
        ]
        expected = figures.setdefault((agency, month), Expected())
        expected.received += 1
        expected.online += channel == "online"
        if target - count >= 2 and rng.random() > 0.05:  # else left open
            done_day = min(day + rng.randint(0, 6), 31)
            shift = rng.uniform(-40, -1) if rng.random() < 0.2 else rng.uniform(1, 400)
            events.append((key + shift, resolved(agency, dossier, at(month, done_day))))
            expected.finished += 1
            expected.on_time += done_day <= due_day
        for k, e in events:
            keyed.append((k, _message(e, "event", e["event_id"])))
            originals.append((k, e))
        count += len(events)
        dossiers += 1
    unique = {e["event_id"] for _, e in originals}
    picked = rng.sample(originals, duplicates + conflicts)
    for n, (k, e) in enumerate(picked[:duplicates]):
        later = k + rng.uniform(1, total / 2)
        keyed.append((later, _message(e, "duplicate", e["event_id"] if n % 2 else None)))
    conflicting: set[str] = set()
    for k, e in picked[duplicates:]:
        copy = {**e, "source": "test-suite-conflicting-copy"}
        keyed.append((k + rng.uniform(1, total / 2), _message(copy, "conflict", None)))
        conflicting.add(e["event_id"])
    for n in range(invalid):
        bad = received(
            rng.choice(agencies), f"BAD{seed}-{n}", at(MAIN_MONTH, 3), due=at(MAIN_MONTH, 5, 17)
        )
        bad["occurred_at"] = "2026-10-03T09:00:00"  # no offset: refused as invalid_field
        keyed.append((rng.uniform(0, total), _message(bad, "invalid", bad["event_id"])))
    keyed.sort(key=lambda km: km[0])
    return Stream(
        messages=[m for _, m in keyed],
        unique=unique,
        conflicting=conflicting,
        invalid=invalid,
        duplicates=duplicates,
        dossiers=dossiers,
        figures=figures,
    )


# ---------------------------------------------------------------------------------------------
# Publishing as an integrator that retries until the stream acknowledges


@dataclass
class Published:
    acks: list[PubAck | None]
    retries: int = 0
    reconnects: int = 0  # new connections taken (publish_all's `reconnect`)

    def stream_dropped(self, stream: Stream) -> int:
        """Duplicates the stream itself dropped (their Nats-Msg-Id was seen before)."""
        return sum(
            1
            for m, a in zip(stream.messages, self.acks, strict=True)
            if m.kind == "duplicate" and a is not None and a.duplicate
        )


async def publish_all(
    nc: NatsClient,
    stream: Stream,
    *,
    rate: float,
    reconnect: Callable[[], Awaitable[NatsClient]] | None = None,
) -> Published:
    """Publish every message at about `rate` per second, in windows of asynchronous publishes;
    a publish that fails or is not acknowledged within 5 s is sent again (same bytes, same
    Nats-Msg-Id), as a careful integrator does when NATS goes away.

    After a round with failures the next uses a fresh JetStream context. nats-py registers a
    publish's ack future before it sends, and a send that raises (NATS down, its reconnect
    buffer full) leaves that future pending for good, holding one of the context's 4,000
    pending slots; a context past that blocks every later publish, and a CI run's publisher
    stalled so during the NATS restart (its stored count then never reached the next step).

    `reconnect`: a new connection, taken after 15 s without a single acknowledgement. A client
    left connected to a cluster node cut off from the others kept failing every publish after
    the cut had healed, under load, while the stream took nothing more (twice in a loaded run,
    the partition test); a careful integrator then reconnects, elsewhere if need be."""
    js = nc.jetstream()
    messages = stream.messages
    out = Published(acks=[None] * len(messages))
    loop = asyncio.get_running_loop()
    started = last_ack = loop.time()
    window = 500
    for first in range(0, len(messages), window):
        todo = list(range(first, min(first + window, len(messages))))
        while todo:
            sent: list[tuple[int, asyncio.Future[PubAck]]] = []
            failed: list[int] = []
            for n, i in enumerate(todo):
                m = messages[i]
                headers = {"Nats-Msg-Id": m.msg_id} if m.msg_id else None
                try:
                    ack = await js.publish_async(m.subject, m.data, headers=headers, wait_stall=5)
                    sent.append((i, ack))
                except Exception:
                    # the connection takes no publishes now: the rest of the round goes with
                    # the next one, not 5 s of stall each
                    failed.extend(todo[n:])
                    break
            # One deadline for the round's acks, not 5 s for each in turn: a client of a node
            # cut off from the others sends without error and never hears back, and 500 acks
            # awaited one by one held the partition test's publisher for 40 minutes.
            if sent:
                await asyncio.wait([future for _, future in sent], timeout=5)
            for i, future in sent:
                if future.done() and not future.cancelled() and future.exception() is None:
                    out.acks[i] = future.result()
                else:
                    future.cancel()  # frees its pending slot in the context
                    failed.append(i)
            if len(failed) < len(todo):
                last_ack = loop.time()
            if failed:
                out.retries += len(failed)
                if reconnect is not None and loop.time() - last_ack > 15:
                    # the caller's connection stays open (its checks use it); ours are closed
                    # Bounded: a connect can pick the node that was cut off again, and closing a
                    # client of it can wait for good on what it still has to flush. The new
                    # connection first: a failed one keeps the old, which is closed only if ours.
                    try:
                        renewed = await asyncio.wait_for(reconnect(), 10)
                    except Exception:
                        renewed = None
                    if renewed is not None:
                        if out.reconnects:
                            with contextlib.suppress(Exception):
                                await asyncio.wait_for(nc.close(), 5)
                        nc = renewed
                        out.reconnects += 1
                    last_ack = loop.time()
                js = nc.jetstream()
                await asyncio.sleep(0.5)
            todo = sorted(failed)
        ahead = started + (first + window) / rate - loop.time()
        if ahead > 0:
            await asyncio.sleep(ahead)
    if out.reconnects:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 5)
    return out


# ---------------------------------------------------------------------------------------------
# `motcua up` in a subprocess, its API, the consumer, the stored tables


# How often a test asks the running process how much it stored (GET /v1/pipeline). Each answer
# reads the last hour's events (their count, distinct ids and median latency: 42 ms of CPU at
# 100,000 events, more with more), and the process under test shares two cores with the test:
# asked every 0.25 s, the polls took a sixth of a core or more from the ingest they waited for.
POLL = 1.0


@dataclass
class Up:
    """`motcua up` subprocesses on one data directory, one at a time."""

    data: Path
    nats_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "MOTCUA_DATA_DIR": str(self.data),
            "MOTCUA_NATS_URL": self.nats_url,
            "MOTCUA_API_PORT": str(self.port),
            "MOTCUA_BOOTSTRAP_ADMIN_KEY": self.key,
            "MOTCUA_INGEST_FLUSH_ROWS": "5000",
            "MOTCUA_INGEST_FETCH_BATCH": "1000",
            "MOTCUA_INGEST_ACK_WAIT": "5",
            "MOTCUA_METRICS_INTERVAL": "30",
            **self.env,
        }
        self.data.mkdir(parents=True, exist_ok=True)
        with (self.data.parent / "up.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "motcua.cli", "up"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        """Ctrl-C: what was fetched is stored and acknowledged, then the process exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def api(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=30
            ) as http:
                r = await http.get(path, params=params)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    async def stored(self) -> int | None:
        """Rows in the raw table, as the running process counts them."""
        body = await self.api("/v1/pipeline")
        return int(body["events_stored"]) if body else None


async def drained(js: JetStreamContext) -> bool:
    """Every message in the stream delivered and acknowledged: since acks follow inserts,
    everything the ingest will ever store is stored."""
    try:
        info = await js.consumer_info(EVENTS_STREAM, DURABLE)
    except Exception:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


_READ_STORE = """
import json, sys
from core.storage.clickhouse import connect
c = connect(sys.argv[1])
q = lambda sql: c.query(sql).result_rows
json.dump({
    "ids": [r[0] for r in q("SELECT toString(event_id) FROM events")],
    "final": q("SELECT count() FROM events FINAL")[0][0],
    "state_events": q("SELECT sum(event_count) FROM dossiers")[0][0],
    "received": q("SELECT count() FROM dossiers WHERE received_at IS NOT NULL")[0][0],
    "dead": q("SELECT reason, toString(event_id) FROM dead_letters FINAL"),
}, open(sys.argv[2], "w"))
"""


def read_store(data: Path) -> dict[str, Any]:
    """The raw tables, read with a client of our own once `motcua up` has stopped (a chDB
    directory opens in one process at a time, and this test process may hold the session's)."""
    out = data.parent / "store.json"
    url = f"chdb://{(data / 'clickhouse').resolve()}"
    subprocess.run(
        [sys.executable, "-c", _READ_STORE, url, str(out)], cwd=ROOT, check=True, timeout=300
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


async def figures_mismatches(up: Up, stream: Stream) -> tuple[int, list[str]]:
    """Compare on_time_rate and online_share per agency and month with the published data."""
    wrong: list[str] = []
    checked = 0
    for (agency, month), expected in sorted(stream.figures.items()):
        period = {"from": f"2026-{month:02d}-01", "to": f"2026-{month:02d}-31"}
        for metric, want in (
            ("on_time_rate", (expected.on_time, expected.finished)),
            ("online_share", (expected.online, expected.received)),
        ):
            body = await up.api(f"/v1/metrics/{metric}", agency=agency, rollup="false", **period)
            groups = body["groups"] if body else None
            got = (groups[0]["numerator"], groups[0]["denominator"]) if groups else None
            checked += 1
            if got != want:
                wrong.append(f"{metric} {agency} 2026-{month:02d}: got {got}, want {want}")
    return checked, wrong


@dataclass
class Outcome:
    stored_rows: int
    stored_distinct: int
    lost: int
    double_counted: int
    unexpected: int
    dead: Counter[str]
    conflicting_dead: set[str]


def judge(stream: Stream, store: dict[str, Any]) -> Outcome:
    ids: list[str] = store["ids"]
    distinct = set(ids)
    dead = Counter(reason for reason, _ in store["dead"])
    return Outcome(
        stored_rows=len(ids),
        stored_distinct=len(distinct),
        lost=len(stream.unique - distinct),
        # rows beyond one per event, plus ids stored that never should be
        double_counted=len(ids) - len(distinct) + len(distinct - stream.unique),
        unexpected=len(distinct - stream.unique),
        dead=dead,
        conflicting_dead={i for r, i in store["dead"] if r == "conflicting_duplicate"},
    )


def figures_line(
    name: str,
    stream: Stream,
    published: Published,
    outcome: Outcome,
    figures: tuple[int, list[str]],
    started: float,
    **extra: Any,
) -> str:
    absorbed = stream.duplicates - (outcome.stored_rows - (len(stream.unique) - outcome.lost))
    parts = {
        "published": len(stream.messages),
        "unique": len(stream.unique),
        "stored": outcome.stored_rows,
        "dead_lettered": sum(outcome.dead.values()),
        "conflicting": len(outcome.conflicting_dead),
        "duplicates_sent": stream.duplicates,
        "duplicates_absorbed": absorbed,
        "by_stream": published.stream_dropped(stream),
        "lost": outcome.lost,
        "double_counted": outcome.double_counted,
        "figures_ok": f"{figures[0] - len(figures[1])}/{figures[0]}",
        **extra,
        "publish_retries": published.retries,
        "elapsed": f"{time.monotonic() - started:.0f}s",
    }
    return f"faults[{name}]: " + " ".join(f"{k}={v}" for k, v in parts.items())


def assert_exact(stream: Stream, outcome: Outcome, store: dict[str, Any], wrong: list[str]) -> None:
    assert outcome.lost == 0
    assert outcome.double_counted == 0
    assert store["final"] == len(stream.unique)
    # every stored event folded into its dossier's state exactly once, every dossier received once
    assert store["state_events"] == len(stream.unique)
    assert store["received"] == stream.dossiers
    assert outcome.conflicting_dead == stream.conflicting
    assert outcome.dead["invalid_field"] == stream.invalid
    assert set(outcome.dead) <= {"invalid_field", "conflicting_duplicate"}, outcome.dead
    assert wrong == []


@dataclass
class Nats:
    server: EmbeddedNats
    nc: NatsClient

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()


async def start_nats(store: Path) -> Nats:
    server = EmbeddedNats(store, port=free_port())
    await server.start()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_streams(nc.jetstream())
    return Nats(server, nc)


async def finish(
    up: Up, js: JetStreamContext, stream: Stream
) -> tuple[dict[str, Any], Outcome, tuple[int, list[str]]]:
    """Wait until all is processed, check the figures through the API, stop cleanly and read
    the store back."""
    if not up.alive():
        up.start()
    await eventually(lambda: drained(js), timeout=300)

    seen: list[int | None] = []

    async def complete() -> bool:
        seen.append(await up.stored())
        if seen[-1] == len(stream.unique):
            return True
        await asyncio.sleep(POLL)
        return False

    try:
        await eventually(complete, timeout=120)
    except AssertionError:
        # More rows than events: a copy stored twice (the merge drops it, FINAL counts once);
        # fewer: events acked but not stored. Which one, and the store's own count, say why.
        up.stop()
        store = read_store(up.data)
        raise AssertionError(
            f"raw rows {seen[-1] if seen else None} (last of {len(seen)} polls) against "
            f"{len(stream.unique)} unique events 120 s after the stream drained; the store "
            f"counts {store['final']} after FINAL, outcome {judge(stream, store)}"
        ) from None
    figures = await figures_mismatches(up, stream)
    up.stop()
    store = read_store(up.data)
    return store, judge(stream, store), figures


# ---------------------------------------------------------------------------------------------
# 1. SIGKILL, again and again, while 200,000 events stream in


async def test_sigkill_repeatedly_while_200k_events_stream_in(tmp_path: Path) -> None:
    # Catches: acking before the insert (loss on SIGKILL); storing again a batch that was
    # inserted but not acked when the process died, or an event the previous process had stored
    # (double counting); a kill between the insert and its materialized views leaving events
    # stored but never folded into state and rollups (figures short).
    started = time.monotonic()
    rng = random.Random(6)
    stream = build_stream(
        6, 200_000, ("FAULTA", "FAULTB", "FAULTC"), duplicates=1_000, conflicts=50, invalid=50
    )
    n = await start_nats(tmp_path / "nats")
    # A recent-events memory of 20,000 (500,000 by default): most copies arrive after it has
    # forgotten their original, so the store's id table (event_ids, looked up for every first
    # delivery the memory does not know) must recognise them, across every restart.
    up = Up(tmp_path / "data", n.server.url, env={"MOTCUA_INGEST_RECENT_EVENTS": "20000"})
    try:
        up.start()
        publisher = asyncio.create_task(publish_all(n.nc, stream, rate=5_000))
        thresholds = sorted(rng.uniform(0.05, 0.85) * len(stream.unique) for _ in range(5))
        for threshold in thresholds:
            since: list[int] = []

            async def mid_stream(threshold: float = threshold, since: list[int] = since) -> bool:
                await asyncio.sleep(POLL)
                stored = await up.stored()
                if stored is None:
                    return False
                since.append(stored)
                # past the threshold, and this process stored some itself: it is mid-stream
                return stored >= threshold and stored >= since[0] + 2_000

            await eventually(mid_stream, timeout=300)
            await asyncio.sleep(rng.uniform(0, 0.3))
            print(f"kill at {time.monotonic() - started:.0f}s, stored {since[-1]}")
            up.kill()
            up.start()
        published = await publisher
        store, outcome, figures = await finish(up, n.js, stream)
        report(
            figures_line(
                "sigkill",
                stream,
                published,
                outcome,
                figures,
                started,
                kills=up.kills,
                recent=20000,
            )
        )
        assert up.kills == 5
        assert_exact(stream, outcome, store, figures[1])
    finally:
        up.stop()
        await n.nc.close()
        n.server.stop()


async def wait_stored(up: Up, at_least: float, timeout: float = 300) -> int:
    """Wait until the running process has stored `at_least` events; returns the count seen."""
    seen: list[int] = []

    async def enough() -> bool:
        await asyncio.sleep(POLL)
        stored = await up.stored()
        if stored is not None:
            seen.append(stored)
        return bool(seen) and seen[-1] >= at_least

    await eventually(enough, timeout=timeout)
    return seen[-1]


# ---------------------------------------------------------------------------------------------
# 2. nats-server stopped and restarted, twice, mid-stream


async def test_nats_server_stopped_and_restarted_mid_stream(tmp_path: Path) -> None:
    # Catches: the ingest's pull loop or the NATS connection dying with the server instead of
    # reconnecting (ingest never resumes); messages fetched before the stop acked without being
    # stored, or stored and then redelivered and stored again; the stream losing what it had
    # acknowledged to the publisher across a restart.
    started = time.monotonic()
    stream = build_stream(7, 40_000, ("FAULTN",), duplicates=400, conflicts=20, invalid=20)
    n = await start_nats(tmp_path / "nats")
    # Copies arrive up to 20,000 messages after their original: with a memory of 2,000, most are
    # recognised through the store's id table (event_ids), across the outages.
    up = Up(tmp_path / "data", n.server.url, env={"MOTCUA_INGEST_RECENT_EVENTS": "2000"})
    outages = 0
    try:
        up.start()
        publisher = asyncio.create_task(publish_all(n.nc, stream, rate=3_000))
        for share in (0.2, 0.6):
            before = await wait_stored(up, share * len(stream.unique))
            n.server.stop()
            assert n.server.process is None or n.server.process.poll() is not None
            # publishes wait in nats-py's reconnect buffer or time out and are sent again; the
            # ingest's fetches fail, and acks of what it stored meanwhile are lost
            await asyncio.sleep(6)
            assert up.alive()
            await n.server.start()
            outages += 1
            await wait_stored(up, before + 1_000)  # ingest resumed on the same connection
        published = await publisher
        store, outcome, figures = await finish(up, n.js, stream)
        report(
            figures_line(
                "nats_restart",
                stream,
                published,
                outcome,
                figures,
                started,
                outages=outages,
                recent=2000,
            )
        )
        assert_exact(stream, outcome, store, figures[1])
    finally:
        up.stop()
        await n.nc.close()
        n.server.stop()


# ---------------------------------------------------------------------------------------------
# 3. ClickHouse writes failing: the chDB data directory made unwritable for a while


def set_writable(root: Path, writable: bool) -> None:
    """Make the directories of the store down to each table's (where an insert creates its new
    part) refuse new entries, or accept them again. As root, permission bits do not stop
    writes: the immutable attribute does (chattr, ext4 and most Linux filesystems); as another
    user, the permission bits. Parts and the engine's own tmp_* directories come and go while
    it runs, so only the levels above them are listed, and one that vanished between the listing
    and chattr is no error; what matters is checked after."""
    dirs = [
        d
        for d, _, _ in os.walk(root)
        if len(Path(d).relative_to(root).parts) <= 3 and not Path(d).name.startswith("tmp_")
    ]
    if os.geteuid() == 0:
        flag = "-i" if writable else "+i"
        subprocess.run(["chattr", flag, *dirs], check=False, capture_output=True)
    else:
        for d in dirs:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(d, 0o755 if writable else 0o555)
    # access() honours the immutable attribute, even for root
    wrong = [d for d in dirs if os.path.isdir(d) and os.access(d, os.W_OK) != writable]
    assert not wrong, f"still {'un' if writable else ''}writable: {wrong[:3]}"


async def test_clickhouse_writes_failing_for_a_while(tmp_path: Path) -> None:
    # Catches: events acked although their insert failed (lost), failed batches dead-lettered as
    # if they were invalid, the consumer crashing on the store's error instead of retrying,
    # and a batch half-written when the failure began (events in, views not) stored again or
    # never folded into the figures after the store came back.
    started = time.monotonic()
    stream = build_stream(8, 40_000, ("FAULTW",), duplicates=400, conflicts=20, invalid=20)
    n = await start_nats(tmp_path / "nats")
    up = Up(tmp_path / "data", n.server.url)
    clickhouse = up.data / "clickhouse"
    frozen = False
    try:
        up.start()
        publisher = asyncio.create_task(publish_all(n.nc, stream, rate=3_000))
        await wait_stored(up, 0.3 * len(stream.unique))
        set_writable(clickhouse, False)
        frozen = True
        await asyncio.sleep(2)  # a batch in flight when the failure began settles
        during = await up.stored()
        await asyncio.sleep(8)
        info = await n.js.consumer_info(EVENTS_STREAM, DURABLE)
        still = await up.stored()
        assert up.alive()
        assert still == during  # nothing stored while the directory refuses writes...
        # ...and what arrived meanwhile waits in the stream, unacked, not dead-lettered
        assert info.num_pending + info.num_ack_pending > 0
        set_writable(clickhouse, True)
        frozen = False
        outage = time.monotonic()
        await wait_stored(up, (still or 0) + 1_000)
        resumed = time.monotonic() - outage
        published = await publisher
        store, outcome, figures = await finish(up, n.js, stream)
        report(
            figures_line(
                "clickhouse_unwritable",
                stream,
                published,
                outcome,
                figures,
                started,
                held=info.num_pending + info.num_ack_pending,
                resumed_after=f"{resumed:.1f}s",
            )
        )
        assert_exact(stream, outcome, store, figures[1])
    finally:
        if frozen:
            set_writable(clickhouse, True)
        up.stop()
        await n.nc.close()
        n.server.stop()
