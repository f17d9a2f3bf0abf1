"""The traffic simulator: deterministic, contract-valid, plausible, and coherent per dossier."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.subjects import parse_subject
from schemas.v1.events import Channel, DossierEvent, Event, Level, parse_event
from services.simulator import publisher
from services.simulator.catalog import (
    AGENCIES,
    CHANNEL_LABELS,
    DOMAIN_LABELS,
    LEVEL_LABELS,
    PROCEDURES,
    agency_by_code,
    procedure_by_code,
    procedures_for,
)
from services.simulator.model import Timeline, arrivals, generate
from services.simulator.publisher import publish_events, run_simulator
from services.simulator.workdays import ICT

pytestmark = pytest.mark.pure

END = datetime(2025, 6, 2, 10, 30, tzinfo=ICT)
START = END - timedelta(days=120)
CODE = re.compile(r"^[A-Za-z0-9_-]+$")  # agency and domain codes are subject tokens
PROCEDURE_CODE = re.compile(r"^\d\.\d{6}$")  # the national database's form


@pytest.fixture(scope="module")
def history() -> list[Event]:
    return list(generate(7860, START, END, 200))


def by_entity(events: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        grouped[ev.dossier_id if isinstance(ev, DossierEvent) else ev.feedback_id].append(ev)
    return grouped


def test_same_seed_same_events() -> None:
    # Catches hidden randomness (global random, uuid4, wall clock): a rerun would invent new
    # dossiers instead of republishing duplicates that Nats-Msg-Id and ingest collapse.
    window = (END - timedelta(days=10), END)
    first = [ev.model_dump_json() for ev in generate(1, *window, 150)]
    again = [ev.model_dump_json() for ev in generate(1, *window, 150)]
    other = [ev.model_dump_json() for ev in generate(2, *window, 150)]
    assert first == again
    assert first != other


def test_a_later_window_extends_the_same_history() -> None:
    # Catches arrivals that depend on the window: a restart at a later `now` must regenerate the
    # same events for the time both runs cover, or a restarted simulator double-counts.
    early_end = END - timedelta(days=3, hours=5)
    start = END - timedelta(days=40)
    earlier = [ev.model_dump_json() for ev in generate(3, start, early_end, 100)]
    later = [
        ev.model_dump_json() for ev in generate(3, start, END, 100) if ev.occurred_at <= early_end
    ]
    assert earlier == later


def test_releasing_in_steps_equals_releasing_at_once() -> None:
    # Catches a live loop that loses or repeats events between ticks.
    items = list(arrivals(5, END - timedelta(days=20), END, 80))
    whole, stepwise = Timeline(), Timeline()
    whole.add(items)
    stepwise.add(items)
    steps: list[Event] = []
    t = END - timedelta(days=20)
    while t < END + timedelta(days=60):
        t += timedelta(hours=7)
        steps += stepwise.release(t)
    assert [e.event_id for e in steps] == [e.event_id for e in whole.release(t)]
    assert len(stepwise) == 0


def test_every_event_round_trips_through_the_contract(history: list[Event]) -> None:
    # Catches models built with fields the contract refuses or reads back differently, and
    # codes that would break the subject (dots, spaces).
    for ev in history:
        assert parse_event(ev.model_dump_json()) == ev
        assert ev.occurred_at.utcoffset() == timedelta(hours=7)
        assert agency_by_code(ev.agency_code) is not None
        assert parse_subject(f"motcua.events.{ev.agency_code}.{ev.type}") is not None
    assert len({ev.event_id for ev in history}) == len(history)


def test_history_is_in_time_order_and_ends_at_end(history: list[Event]) -> None:
    # Catches out-of-order backfill and events from the future; open dossiers must stay open.
    times = [ev.occurred_at for ev in history]
    assert times == sorted(times)
    assert times[0] > START and times[-1] <= END
    received = {ev.dossier_id for ev in history if ev.type == "dossier.received"}
    finished = {
        ev.dossier_id for ev in history if ev.type in ("dossier.resolved", "dossier.withdrawn")
    }
    assert 0 < len(received - finished) < 0.2 * len(received)


def test_shares_are_plausible(history: list[Event]) -> None:
    # Catches a broken profile: dashboards and the 766 index would show absurd figures.
    received = [ev for ev in history if ev.type == "dossier.received"]
    n = len(received)
    online = sum(ev.channel == Channel.online for ev in received) / n
    postal = sum(ev.channel == Channel.postal for ev in received) / n
    assert 0.35 <= online <= 0.45
    assert 0.01 <= postal <= 0.06
    kinds: dict[str, set[str]] = defaultdict(set)
    for ev in history:
        if isinstance(ev, DossierEvent):
            kinds[ev.type].add(ev.dossier_id)
    land = {ev.dossier_id for ev in received if ev.domain_code == "dat_dai"}
    resolved = kinds["dossier.resolved"]
    late = kinds["dossier.late"] & resolved
    land_late = len(late & land) / len(resolved & land)
    other_late = len(late - land) / len(resolved - land)
    assert 0.015 <= land_late <= 0.06
    assert other_late <= 0.012 and land_late > 2 * other_late
    assert 0.55 <= len(kinds["dossier.apology_issued"]) / len(kinds["dossier.late"]) <= 0.85
    assert 0.80 <= len(kinds["dossier.digitized"]) / n <= 0.90
    assert 0.08 <= len(kinds["dossier.supplement_requested"]) / n <= 0.16
    assert 0.003 <= len(kinds["dossier.withdrawn"]) / n <= 0.02
    paid = [ev for ev in history if ev.type == "dossier.paid"]
    assert 0.30 <= sum(ev.channel == "online" for ev in paid) / len(paid) <= 0.50


def test_each_dossier_unfolds_in_a_coherent_order(history: list[Event]) -> None:
    # Catches lifecycles the metrics cannot fold: results before receipt, returns before results,
    # resubmissions without a request, events after a withdrawal.
    for entity, events in by_entity(history).items():
        first = events[0]
        at: dict[str, Any] = {}
        for ev in events:
            at.setdefault(ev.type, ev.occurred_at)
        if first.type == "feedback.filed":
            assert first.due_at > first.filed_at == first.occurred_at
            for later in ("feedback.published", "feedback.rated"):
                if later in at:
                    assert at[later] > at["feedback.answered"] > first.filed_at
            continue
        assert first.type == "dossier.received", entity
        assert all(ev.occurred_at > first.occurred_at for ev in events[1:])
        assert first.due_at > first.received_at == first.occurred_at
        types = [ev.type for ev in events]
        if "dossier.resolved" in at:
            assert "dossier.withdrawn" not in at
        if "dossier.returned" in at:
            assert at["dossier.returned"] > at["dossier.resolved"]
        if "dossier.rated" in at:
            assert at["dossier.rated"] > at["dossier.returned"]
        if "dossier.withdrawn" in at:
            assert types[-1] == "dossier.withdrawn"
        if "dossier.late" in at:
            assert at["dossier.late"] > first.due_at
        waiting = 0  # supplement requests not yet answered by the citizen
        for kind in types:
            waiting += (kind == "dossier.supplement_requested") - (
                kind == "dossier.supplement_received"
            )
            assert waiting >= 0, entity


def test_catalog_is_consistent() -> None:
    # Catches codes the contract refuses, orphan communes and agencies with nothing to handle.
    assert len({a.code for a in AGENCIES}) == len(AGENCIES)
    assert len({p.code for p in PROCEDURES}) == len(PROCEDURES)
    for agency in AGENCIES:
        assert CODE.match(agency.code) and procedures_for(agency), agency.code
        if agency.level is Level.commune:
            parent = agency_by_code(agency.parent or "")
            assert parent is not None and parent.level is Level.district
    for procedure in PROCEDURES:
        assert PROCEDURE_CODE.match(procedure.code) and CODE.match(procedure.domain)
        assert procedure.domain in DOMAIN_LABELS
        assert procedure_by_code(procedure.code) is procedure
    assert set(LEVEL_LABELS) == {level.value for level in Level}
    assert set(CHANNEL_LABELS) == {channel.value for channel in Channel}


class _Ack:
    duplicate = False


class FakeJetStream:
    """Records publish_async calls; acks at once, like a healthy server."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish_async(
        self,
        subject: str,
        payload: bytes = b"",
        wait_stall: float | None = None,
        stream: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> asyncio.Future[_Ack]:
        self.published.append((subject, payload, headers or {}))
        ack: asyncio.Future[_Ack] = asyncio.get_running_loop().create_future()
        ack.set_result(_Ack())
        return ack


async def test_publish_events_sends_subject_payload_and_msg_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Catches a wrong subject, a payload the ingest cannot parse, or a missing Nats-Msg-Id
    # (without it a republished backfill is stored twice); windows smaller than the input.
    monkeypatch.setattr(publisher, "PUBLISH_WINDOW", 7)
    events = list(generate(11, END - timedelta(days=2), END, 20))
    js = FakeJetStream()
    assert await publish_events(js, events) == len(events)  # type: ignore[arg-type]
    for (subject, payload, headers), ev in zip(js.published, events, strict=True):
        assert subject == f"motcua.events.{ev.agency_code}.{ev.type}"
        assert parse_event(payload) == ev
        assert headers == {"Nats-Msg-Id": str(ev.event_id)}


async def test_run_simulator_backfills_then_keeps_the_rate() -> None:
    # Catches a live loop that stalls, republishes, or drifts far from the requested rate.
    js, stop = FakeJetStream(), asyncio.Event()
    clock = [datetime(2025, 6, 2, 2, 0, tzinfo=UTC)]
    calls = 0

    def now() -> datetime:
        nonlocal calls
        calls += 1
        if calls > 1:
            clock[0] += timedelta(seconds=5)
        if calls > 120:  # ten simulated minutes of live traffic
            stop.set()
        return clock[0]

    await run_simulator(
        js,  # type: ignore[arg-type]
        seed=1,
        history_days=10,
        rate_per_second=3.0,
        stop=stop,
        now=now,
        tick_seconds=0,
    )
    events = [parse_event(payload) for _, payload, _ in js.published]
    assert len({ev.event_id for ev in events}) == len(events)
    start = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)
    backfill = [ev for ev in events if ev.occurred_at <= start]
    live = [ev for ev in events if ev.occurred_at > start]
    assert len(backfill) > 1000
    assert 0.9 * 3.0 * 595 <= len(live) <= 3.0 * 600 + 1
    assert all(ev.occurred_at <= clock[0] for ev in live)


@pytest.mark.pure
def test_agencies_follow_the_org_tree_of_each_date() -> None:
    # Catches: simulated dossiers filed by units abolished on 1/7/2025, which no figure of the
    # 2026 tree would count, or the new units used before they existed.
    import json
    from datetime import date
    from importlib import resources

    seed_file = resources.files("services.reference") / "data" / "khanhhoa.json"
    agencies = json.loads(seed_file.read_text(encoding="utf-8"))["agencies"]

    def valid(code: str, day: date) -> bool:
        return any(
            a["agency_code"] == code
            and date.fromisoformat(a["valid_from"]) <= day
            and (a["valid_to"] is None or day < date.fromisoformat(a["valid_to"]))
            for a in agencies
        )

    for start in (datetime(2025, 5, 1, tzinfo=ICT), datetime(2025, 8, 1, tzinfo=ICT)):
        events = list(generate(7860, start, start + timedelta(days=20), dossiers_per_day=80))
        firsts = [e for e in events if e.type in ("dossier.received", "feedback.filed")]
        assert firsts
        for e in firsts:
            day = e.occurred_at.astimezone(ICT).date()
            assert valid(e.agency_code, day), (e.agency_code, day)


@pytest.mark.pure
def test_due_dates_skip_tet() -> None:
    # Catches: simulated due dates counted in plain weekdays, which would make every dossier
    # received before Tết look late to the metrics (they count on the official calendar).
    from services.simulator.workdays import add_working_days

    # 15 working days after Tue 10/2/2026, Tết 14–22/2 skipped → Tue 10/3 (not 3/3)
    start = datetime(2026, 2, 10, 9, tzinfo=ICT)
    assert add_working_days(start, 15) == datetime(2026, 3, 10, 9, tzinfo=ICT)
