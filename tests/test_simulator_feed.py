"""The simulator's daily manifests and feed faults (issue 18): manifests count what the simulated
source recorded, by the figures' rules; a lost batch and a silent feed withhold exactly what they
say, and the gap closes when the batch (or the history) is sent again."""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from core.messaging.nats_server import EmbeddedNats
from motcua.cli import build_parser
from motcua.up_cli import _simulate_options
from schemas.subjects import EVENTS_STREAM
from schemas.v1.events import (
    MANIFEST_MAX_IDS,
    DossierEvent,
    DossierReceived,
    Event,
    ManifestDaily,
    parse_event,
)
from tests.test_simulator import FakeJetStream
from tools.simulator.catalog import agency_by_code, procedure_by_code
from tools.simulator.faults import (
    FaultPlan,
    Faults,
    LostBatch,
    Silence,
    parse_lost_batch,
    parse_silence,
)
from tools.simulator.feed import Feed
from tools.simulator.lifecycle import dossier_lifecycle
from tools.simulator.manifests import Ledger, manifest_time
from tools.simulator.model import generate
from tools.simulator.publisher import history_start, run_simulator
from tools.simulator.workdays import ICT

# Two weeks around Tết 2026 (holidays 14-22/2): working days, a weekend and holidays with nothing.
START = datetime(2026, 2, 9, tzinfo=ICT)
END = datetime(2026, 2, 24, 10, 30, tzinfo=ICT)
LAST_DAY = date(2026, 2, 23)  # the last day whose manifest is due by END (24/2 00:15)
TET = date(2026, 2, 17)
SEED = 18


def day_of(t: datetime) -> date:
    return t.astimezone(ICT).date()


def ids(events: list[Event]) -> list[uuid.UUID]:
    return [e.event_id for e in events]


@pytest.fixture(scope="module")
def truth() -> list[Event]:
    """Everything the simulated sources recorded (the feed's input)."""
    return list(generate(SEED, START, END, 150))


@pytest.fixture(scope="module")
def sent(truth: list[Event]) -> list[Event]:
    """What a feed without faults sends of it."""
    return list(Feed(START.date()).send(truth, END))


def manifests_of(events: list[Event]) -> dict[tuple[str, date], ManifestDaily]:
    found: dict[tuple[str, date], ManifestDaily] = {}
    for e in events:
        if isinstance(e, ManifestDaily):
            assert (e.agency_code, e.day) not in found  # one per agency and day
            found[e.agency_code, e.day] = e
    return found


def hand_count(truth: list[Event]) -> dict[tuple[str, date], dict[str, Any]]:
    """Per agency and day, by the contract's rules: received by the local day of received_at;
    finished by that of coalesce(resolved_at, returned_at, withdrawn_at); open at the end of the
    day: received by then and not finished by then; feedback filed and answered by day."""
    counts: dict[tuple[str, date], dict[str, Any]] = defaultdict(
        lambda: {"received": 0, "finished": 0, "open": 0, "filed": 0, "answered": 0, "ids": []}
    )
    dossiers: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in truth:
        if isinstance(e, DossierEvent):
            dossiers[e.dossier_id].setdefault(e.type, e)  # the first of each type
        elif e.type == "feedback.filed":
            counts[e.agency_code, day_of(e.occurred_at)]["filed"] += 1
        elif e.type == "feedback.answered":
            counts[e.agency_code, day_of(e.occurred_at)]["answered"] += 1
    for dossier_id, first in dossiers.items():
        received = first["dossier.received"]
        agency, got = received.agency_code, day_of(received.received_at)
        ends = [first.get(t) for t in ("dossier.resolved", "dossier.returned", "dossier.withdrawn")]
        end = next((day_of(e.occurred_at) for e in ends if e is not None), None)
        counts[agency, got]["received"] += 1
        counts[agency, got]["ids"].append(dossier_id)
        if end is not None:
            counts[agency, end]["finished"] += 1
        day = got
        while day <= LAST_DAY and (end is None or day < end):
            counts[agency, day]["open"] += 1
            day += timedelta(days=1)
    return counts


@pytest.mark.pure
def test_manifests_validate_and_equal_a_hand_count(truth: list[Event], sent: list[Event]) -> None:
    # Catches manifests the contract refuses, counts that follow other rules than the figures'
    # (open at the end of the day, finished by the end's day), a day or an agency without its
    # manifest, and a quiet day (Tết) with no manifest to prove it complete.
    assert ids([e for e in sent if not isinstance(e, ManifestDaily)]) == ids(truth)
    manifests = manifests_of(sent)
    assert {day for _, day in manifests} == {
        START.date() + timedelta(days=n) for n in range((LAST_DAY - START.date()).days + 1)
    }
    expected = hand_count(truth)
    active = {(code, day) for (code, day), c in expected.items() if any(c.values())}
    assert {(code, day) for code, day in active if day <= LAST_DAY} <= set(manifests)
    for (code, day), manifest in manifests.items():
        assert parse_event(manifest.model_dump_json()) == manifest
        assert manifest.occurred_at == datetime.combine(day + timedelta(days=1), time(0, 15), ICT)
        got = {
            "received": manifest.dossiers_received,
            "finished": manifest.dossiers_finished,
            "open": manifest.dossiers_open,
            "filed": manifest.feedback_filed,
            "answered": manifest.feedback_answered,
            "ids": manifest.received_ids,
        }
        assert got == expected[code, day], (code, day)
    # Tết: no dossier anywhere, yet every agency that received during the fortnight reports.
    tet = [m for (_, day), m in manifests.items() if day == TET]
    assert tet and all(m.dossiers_received == m.feedback_filed == 0 for m in tet)
    assert {c for (c, _), m in manifests.items() if m.dossiers_received} <= {
        m.agency_code for m in tet
    }
    assert sum(m.dossiers_received for m in manifests.values()) > 500  # not a vacuous test


@pytest.mark.pure
def test_a_manifest_is_sent_after_its_days_events(sent: list[Event]) -> None:
    # Catches a manifest sent before its day is over (it would miss the day's last events).
    last_of_day: dict[date, int] = {}
    for index, e in enumerate(sent):
        if not isinstance(e, ManifestDaily):
            last_of_day[day_of(e.occurred_at)] = index
    for index, e in enumerate(sent):
        if isinstance(e, ManifestDaily):
            assert index > max(i for d, i in last_of_day.items() if d <= e.day)


def _received(count: int, day: date) -> list[DossierReceived]:
    agency = agency_by_code("STNMT", day)
    procedure = procedure_by_code("1.004227", day)
    assert agency is not None and procedure is not None
    at = datetime.combine(day, time(9), ICT)
    (first, *_) = dossier_lifecycle(random.Random(1), agency, procedure, at)
    assert isinstance(first, DossierReceived)
    return [
        first.model_copy(update={"dossier_id": f"STNMT-{n:05d}", "event_id": uuid.uuid4()})
        for n in range(count)
    ]


@pytest.mark.pure
@pytest.mark.parametrize("count", [MANIFEST_MAX_IDS, MANIFEST_MAX_IDS + 1])
def test_ids_are_listed_only_when_the_day_is_small(count: int) -> None:
    # Catches a list longer than the contract allows (the manifest would be refused and the day
    # never reconciled) or a small day whose ids are left out (no drill-down to missing ids).
    day = date(2026, 3, 4)
    ledger = Ledger(day)
    for event in _received(count, day):
        ledger.record(event)
    (manifest,) = [m for m in ledger.close(manifest_time(day)) if m.agency_code == "STNMT"]
    assert manifest.dossiers_received == manifest.dossiers_open == count
    assert parse_event(manifest.model_dump_json()) == manifest
    if count <= MANIFEST_MAX_IDS:
        assert manifest.received_ids == [f"STNMT-{n:05d}" for n in range(count)]
    else:
        assert manifest.received_ids is None


@pytest.mark.pure
def test_manifest_ids_are_stable_per_content(truth: list[Event], sent: list[Event]) -> None:
    # Catches manifest ids drawn at random (a restart would send every manifest again as a new
    # version) and ids that ignore the content (a corrected count would be a conflicting copy of
    # the old manifest, dead-lettered, instead of a new version).
    again = manifests_of(list(Feed(START.date()).send(truth, END)))
    assert {k: m.model_dump_json() for k, m in again.items()} == {
        k: m.model_dump_json() for k, m in manifests_of(sent).items()
    }
    dropped = next(e for e in truth if isinstance(e, DossierReceived) and e.agency_code == "STNMT")
    fewer = manifests_of(list(Feed(START.date()).send([e for e in truth if e != dropped], END)))
    key = ("STNMT", day_of(dropped.received_at))
    assert fewer[key].dossiers_received == again[key].dossiers_received - 1
    assert fewer[key].event_id != again[key].event_id
    assert len({m.event_id for m in again.values()}) == len(again)


@pytest.mark.pure
def test_a_lost_batch_is_withheld_counted_and_sent_later(
    truth: list[Event], sent: list[Event]
) -> None:
    # Catches a lost batch that also drops the day's manifest (the gap would be invisible), that
    # loses more or less than the day's afternoon events of that agency, or that cannot be sent
    # again (the gap would never close).
    agency, day = "STNMT", date(2026, 2, 11)
    lost = [
        e
        for e in truth
        if e.agency_code == agency
        and day_of(e.occurred_at) == day
        and e.occurred_at.astimezone(ICT).time() >= time(12)
    ]
    lost_ids = {e.dossier_id for e in lost if isinstance(e, DossierReceived)}
    assert lost_ids and len(lost) > len(lost_ids)  # dossiers received and other events
    feed = Feed(START.date(), Faults(lost_batches=frozenset({(agency, day)})))
    faulty = list(feed.send(truth, END))
    assert ids(faulty) == [i for i in ids(sent) if i not in {e.event_id for e in lost}]
    assert ids(feed.lost) == ids(lost)
    manifest = manifests_of(faulty)[agency, day]
    assert manifest == manifests_of(sent)[agency, day]  # the source's count, lost ones included
    assert manifest.received_ids is not None and lost_ids <= set(manifest.received_ids)
    assert feed.take_lost(datetime.combine(day, time(23, 59), ICT)) == []  # the day not over
    assert ids(feed.take_lost(datetime.combine(day + timedelta(days=1), time(), ICT))) == ids(lost)
    assert feed.lost == [] and feed.take_lost(END) == []


@pytest.mark.pure
def test_a_silent_feed_sends_nothing_from_its_start(truth: list[Event], sent: list[Event]) -> None:
    # Catches a silent feed that still sends its manifests (no alert would see it), stops other
    # agencies too, or drops what it sent before going silent.
    agency, start = "XA_CAMLAM", datetime(2026, 2, 12, 10, tzinfo=ICT)
    faulty = list(Feed(START.date(), Faults(silent_from={agency: start})).send(truth, END))
    expected = [e for e in sent if e.agency_code != agency or e.occurred_at < start]
    assert ids(faulty) == ids(expected)
    before = manifests_of(faulty)
    assert (agency, date(2026, 2, 11)) in before  # sent at 00:15 on the 12th
    assert not any(code == agency and day >= date(2026, 2, 12) for code, day in before)
    silenced = [e for e in sent if e.agency_code == agency and e.occurred_at >= start]
    assert sum(isinstance(e, ManifestDaily) for e in silenced) >= 10
    assert sum(isinstance(e, DossierReceived) for e in silenced) > 0


@pytest.mark.pure
def test_faults_at_the_start_resolve_their_defaults() -> None:
    # Catches defaults that would show nothing at once: a silence starting today (no working day
    # has passed yet) or a lost batch of a day not yet over.
    started = datetime(2026, 3, 2, 10, tzinfo=ICT)  # a Monday
    plan = FaultPlan(
        silences=(
            parse_silence("STNMT"),
            parse_silence("STP@now"),
            parse_silence("SXD@2026-02-25"),
            parse_silence("SYT@2026-02-25T14:30"),
        ),
        lost_batches=(parse_lost_batch("XA_CAMLAM"), parse_lost_batch("SKHDT@2026-02-24")),
    )
    faults = plan.at(started)
    assert faults.silent_from == {
        "STNMT": datetime(2026, 2, 26, tzinfo=ICT),  # Thursday: Thursday and Friday silent
        "STP": started,
        "SXD": datetime(2026, 2, 25, tzinfo=ICT),
        "SYT": datetime(2026, 2, 25, 14, 30, tzinfo=ICT),
    }
    assert faults.lost_batches == {("XA_CAMLAM", date(2026, 2, 27)), ("SKHDT", date(2026, 2, 24))}
    for bad in ("NOPE", "STNMT@yesterday"):
        with pytest.raises(ValueError):
            parse_silence(bad)
    for bad in ("NOPE@2026-02-24", "STNMT@2026-02-31"):
        with pytest.raises(ValueError):
            parse_lost_batch(bad)


def _up_options(*argv: str) -> dict[str, Any] | None:
    return _simulate_options(build_parser(["up"]).parse_args(["up", *argv]))


@pytest.mark.pure
def test_motcua_up_takes_the_fault_options(capsys: pytest.CaptureFixture[str]) -> None:
    # Catches fault flags that never reach the simulator, a default `--simulate` that is no longer
    # fault-free, and a wrong flag found only once everything has started.
    assert _up_options("--simulate") == {"seed": 7860, "history_days": 60, "rate_per_second": None}
    assert _up_options() is None
    options = _up_options(
        "--simulate",
        "--simulate-silent",
        "STNMT@2026-02-25",
        "--simulate-silent",
        "STP",
        "--simulate-lose-batch",
        "XA_CAMLAM@2026-02-24",
        "--simulate-republish-after",
        "10",
    )
    assert options is not None
    assert options["faults"] == FaultPlan(
        (Silence("STNMT", date(2026, 2, 25)), Silence("STP")),
        (LostBatch("XA_CAMLAM", date(2026, 2, 24)),),
        timedelta(minutes=10),
    )
    for argv in (("--simulate-silent", "STNMT"), ("--simulate", "--simulate-lose-batch", "NOPE")):
        with pytest.raises(SystemExit) as exit_:
            _up_options(*argv)
        assert exit_.value.code == 2
    assert "unknown agency code 'NOPE'" in capsys.readouterr().err
    (sub,) = [a for a in build_parser(["up"])._actions if isinstance(a, argparse._SubParsersAction)]
    up_help = sub.choices["up"].format_help()
    for flag in ("--simulate-silent", "--simulate-lose-batch", "--simulate-republish-after"):
        assert flag in up_help


def stepping_clock(
    start: datetime, step: timedelta, end: datetime, stop: asyncio.Event
) -> Callable[[], datetime]:
    """now() for run_simulator: `start` (the backfill's), then `step` later at each call; `stop`
    is set by the live tick that reaches `end`, which is still run."""
    clock = [start - step]

    def now() -> datetime:
        clock[0] += step
        if clock[0] > start and clock[0] >= end:
            stop.set()
        return clock[0]

    return now


async def _run(js: Any, started: datetime, until: datetime, faults: FaultPlan | None) -> None:
    stop = asyncio.Event()
    await run_simulator(
        js,
        seed=SEED,
        history_days=3,
        stop=stop,
        now=stepping_clock(started, timedelta(minutes=10), until, stop),
        dossiers_per_day=60,
        tick_seconds=0,
        faults=faults,
    )


@pytest.mark.pure
async def test_a_restart_the_same_day_sends_the_same_manifests() -> None:
    # Catches a world that starts at the restart's clock time: every manifest of its first weeks
    # would change (fewer dossiers), and each restart would send new versions of them.
    first, later = FakeJetStream(), FakeJetStream()
    started = datetime(2026, 3, 4, 9, 5, tzinfo=ICT)
    await _run(first, started, started, None)
    await _run(later, started + timedelta(hours=6, minutes=7), started + timedelta(hours=7), None)

    def manifests(js: FakeJetStream) -> dict[str, bytes]:
        return {h["Nats-Msg-Id"]: p for s, p, h in js.published if s.endswith(".manifest.daily")}

    assert manifests(first) and manifests(first) == manifests(later)
    assert history_start(started, 3) == datetime(2026, 3, 1, tzinfo=ICT)


async def _stream(nc: NatsClient) -> list[tuple[str, Event]]:
    js = nc.jetstream()
    last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
    messages = [await js.get_msg(EVENTS_STREAM, seq) for seq in range(1, last + 1)]
    return [(m.subject or "", parse_event(m.data or b"")) for m in messages]


async def test_through_nats_a_lost_batch_is_sent_late_and_a_restart_closes_the_silence(
    own_nats: tuple[EmbeddedNats, NatsClient],
) -> None:
    # Catches manifests JetStream refuses or files under another subject, a republished lost
    # batch that never arrives, and a restart whose manifests are new messages instead of
    # duplicates of the first run's (Nats-Msg-Id = event_id).
    _, nc = own_nats
    started, until = datetime(2026, 3, 4, 22, tzinfo=ICT), datetime(2026, 3, 5, 1, tzinfo=ICT)
    faults = FaultPlan(
        silences=(Silence("XA_CAMLAM", date(2026, 3, 3)),),
        lost_batches=(LostBatch("STNMT", date(2026, 3, 4)),),
        republish_after=timedelta(minutes=30),
    )
    await _run(nc.jetstream(), started, until, faults)
    truth = list(generate(SEED, history_start(started, 3), until, 60))
    clean = list(Feed(date(2026, 3, 1)).send(truth, until))
    first = await _stream(nc)
    silence = datetime(2026, 3, 3, tzinfo=ICT)
    silent = {
        e.event_id for e in clean if e.agency_code == "XA_CAMLAM" and e.occurred_at >= silence
    }
    assert silent
    assert Counter(e.event_id for _, e in first) == Counter(set(ids(clean)) - silent)
    for subject, e in first:
        assert subject == f"motcua.events.{e.agency_code}.{e.type}"
    manifests = [e for _, e in first if isinstance(e, ManifestDaily)]
    assert {m.day for m in manifests} == {date(2026, 3, d) for d in (1, 2, 3, 4)}
    # The lost batch (STNMT's 4/3 from 12:00) arrived, after everything the backfill sent.
    lost = {
        e.event_id
        for e in truth
        if e.agency_code == "STNMT"
        and e.occurred_at >= datetime(2026, 3, 4, 12, tzinfo=ICT)
        and e.occurred_at < datetime(2026, 3, 5, tzinfo=ICT)
    }
    position = {e.event_id: index for index, (_, e) in enumerate(first)}
    backfill = [
        position[e.event_id]
        for e in clean
        if e.occurred_at <= started and e.event_id not in lost | silent
    ]
    assert lost and min(position[i] for i in lost) > max(backfill)
    await _run(nc.jetstream(), started, until, None)
    again = await _stream(nc)
    assert Counter(e.event_id for _, e in again) == Counter(ids(clean))
