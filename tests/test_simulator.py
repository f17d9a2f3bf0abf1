"""The traffic simulator: deterministic, contract-valid, plausible, and coherent per dossier."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from core.reference.calendar import WorkingCalendar
from motcua.cli import build_parser
from schemas.subjects import parse_subject
from schemas.v1.events import (
    Channel,
    DossierEvent,
    DossierReceived,
    Event,
    FeedbackEvent,
    FeedbackFiled,
    Level,
    parse_event,
)
from tools.simulator import publisher, workdays
from tools.simulator.catalog import (
    AGENCIES,
    CHANNEL_LABELS,
    DOMAIN_LABELS,
    LEVEL_LABELS,
    PROCEDURES,
    agency_by_code,
    procedure_by_code,
    procedures_for,
    read_seed,
)
from tools.simulator.lifecycle import dossier_lifecycle, feedback_lifecycle
from tools.simulator.model import Timeline, arrivals, generate
from tools.simulator.publisher import publish_events, run_simulator
from tools.simulator.workdays import ICT, add_working_days

pytestmark = pytest.mark.pure

END = datetime(2025, 6, 2, 10, 30, tzinfo=ICT)
START = END - timedelta(days=120)
CODE = re.compile(r"^[A-Za-z0-9_-]+$")  # agency and domain codes are subject tokens
PROCEDURE_CODE = re.compile(r"^\d\.\d{6}$")  # the national database's form
RESTRUCTURED = date(2025, 7, 1)  # districts abolished, communes merged
SEED = read_seed()


def seed_valid(section: str, key: str, code: str, day: date) -> list[dict[str, Any]]:
    """The seed file's records of `code` in force on `day` (at most one)."""
    return [
        r
        for r in SEED[section]
        if r[key] == code
        and date.fromisoformat(r["valid_from"]) <= day
        and (r["valid_to"] is None or day < date.fromisoformat(r["valid_to"]))
    ]


def assert_in_the_tree_of_their_arrival(events: list[Event]) -> None:
    """Every item's agency and TTHC are the seed's versions in force when it arrived, at the
    agency's level then; its later events keep its agency."""
    for entity, items in by_entity(events).items():
        first = items[0]
        day = first.occurred_at.astimezone(ICT).date()
        (agency,) = seed_valid("agencies", "agency_code", first.agency_code, day)
        assert agency["parent_code"] is not None, entity  # never the root KHANHHOA
        assert all(ev.agency_code == first.agency_code for ev in items), entity
        if isinstance(first, DossierReceived):
            assert first.level == agency["level"], entity
            (procedure,) = seed_valid("procedures", "procedure_code", first.procedure_code, day)
            assert agency["level"] in procedure["levels"], entity


@pytest.fixture(scope="module")
def history() -> list[Event]:
    return list(generate(7860, START, END, 200))


def by_entity(events: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, DossierEvent):
            grouped[ev.dossier_id].append(ev)
        elif isinstance(ev, FeedbackEvent):
            grouped[ev.feedback_id].append(ev)
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
        assert agency_by_code(ev.agency_code, ev.occurred_at.date()) is not None
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
    # Catches codes the contract refuses, versions that differ from the seed `motcua up` loads
    # (simulated items would not roll up), orphan communes and agencies with nothing to handle.
    assert len({(a.code, a.valid_from) for a in AGENCIES}) == len(AGENCIES)
    assert len({(p.code, p.valid_from) for p in PROCEDURES}) == len(PROCEDURES)
    receiving = [r for r in SEED["agencies"] if r["parent_code"] is not None]
    assert [(a.code, a.valid_from.isoformat()) for a in AGENCIES] == [
        (r["agency_code"], r["valid_from"]) for r in receiving
    ]
    for agency in AGENCIES:
        assert CODE.match(agency.code) and procedures_for(agency), agency.code
        assert agency.weight > 0 and agency_by_code(agency.code, agency.valid_from) is agency
        (record,) = seed_valid("agencies", "agency_code", agency.code, agency.valid_from)
        assert agency.level == record["level"] and agency.parent == record["parent_code"]
        if agency.level is Level.commune and agency.valid_from < RESTRUCTURED:
            parent = agency_by_code(agency.parent or "", agency.valid_from)
            assert parent is not None and parent.level is Level.district
    for procedure in PROCEDURES:
        assert PROCEDURE_CODE.match(procedure.code) and CODE.match(procedure.domain)
        assert procedure.domain in DOMAIN_LABELS
        assert procedure_by_code(procedure.code, procedure.valid_from) is procedure
        (record,) = seed_valid("procedures", "procedure_code", procedure.code, procedure.valid_from)
        assert procedure.levels == tuple(Level(level) for level in record["levels"])
        assert procedure.fee_required == record["fee_bearing"]
    assert set(LEVEL_LABELS) == {level.value for level in Level}
    assert set(CHANNEL_LABELS) == {channel.value for channel in Channel}


@pytest.mark.parametrize(
    "start", [datetime(2025, 7, 1, tzinfo=ICT), datetime(2026, 9, 28, 10, 30, tzinfo=ICT)]
)
def test_from_1_7_2025_items_go_to_the_merged_tree(start: datetime) -> None:
    # Catches dossiers filed by districts abolished on 1/7/2025 (no figure of the 2026 tree would
    # count them), a district-level TTHC or level at a commune, or the root as an agency.
    events = list(generate(7860, start, start + timedelta(days=30), 120))
    assert_in_the_tree_of_their_arrival(events)
    for ev in events:  # arrivals all after the change: every event is in the new tree
        assert seed_valid("agencies", "agency_code", ev.agency_code, ev.occurred_at.date())
    received = [ev for ev in events if isinstance(ev, DossierReceived)]
    assert {ev.level for ev in received} == {Level.province, Level.commune}
    codes = {ev.agency_code for ev in events}
    assert {"PHUONG_BACNHATRANG", "XA_CAMLAM", "PHUONG_BANGOI", "STNMT"} <= codes
    land = [ev for ev in received if ev.procedure_code == "1.004238"]  # moved down to communes
    assert land and all(ev.level is Level.commune for ev in land)


def test_before_1_7_2025_items_use_the_old_tree(history: list[Event]) -> None:
    # Catches the merged units used before they existed, or districts and their communes missing
    # from the history they were part of.
    assert_in_the_tree_of_their_arrival(history)
    assert {"NHATRANG", "XA_VINHLUONG", "CAMLAM"} <= {ev.agency_code for ev in history}
    assert "PHUONG_BACNHATRANG" not in {ev.agency_code for ev in history}
    received = [ev for ev in history if isinstance(ev, DossierReceived)]
    assert {ev.level for ev in received} == {Level.province, Level.district, Level.commune}


def test_items_open_on_1_7_2025_keep_their_agency() -> None:
    # Catches items re-filed mid-lifecycle: the metrics fold a dossier by (agency, id), so a
    # dossier switching agency would count as two, one of them never received.
    events = list(
        generate(3, datetime(2025, 6, 16, tzinfo=ICT), datetime(2025, 7, 15, tzinfo=ICT), 60)
    )
    assert_in_the_tree_of_their_arrival(events)
    days = {ev.occurred_at.date() >= RESTRUCTURED for ev in events if ev.agency_code == "NHATRANG"}
    assert days == {False, True}  # NHATRANG's open dossiers finish after the change


def test_due_dates_skip_tet() -> None:
    # Catches due dates counted in plain weekdays: a dossier received before Tết would look late
    # to the metrics, which count on the official calendar (Tết 2026: 14-22/2).
    received = datetime(2026, 2, 10, 9, tzinfo=ICT)
    assert add_working_days(received, 15) == datetime(2026, 3, 10, 9, tzinfo=ICT)  # not 3/3
    procedure = procedure_by_code("1.003003", received.date())  # 15 working days
    agency = agency_by_code("XA_CAMLAM", received.date())
    assert procedure is not None and agency is not None
    (first, *_) = dossier_lifecycle(random.Random(1), agency, procedure, received)
    assert isinstance(first, DossierReceived)
    assert first.due_at == datetime(2026, 3, 10, 9, tzinfo=ICT)


def test_feedback_is_due_at_the_end_of_its_15th_working_day() -> None:
    # Catches a feedback deadline that ignores Tết, or one at the filing's clock time instead of
    # the end of the day (the metrics use WorkingCalendar.working_day_deadline).
    (filed, *_) = feedback_lifecycle(
        random.Random(2), AGENCIES[0], datetime(2026, 2, 12, 15, tzinfo=ICT)
    )
    assert isinstance(filed, FeedbackFiled)
    assert filed.due_at == datetime.combine(date(2026, 3, 12), time(23, 59, 59, 999_000), ICT)
    assert filed.due_at == WorkingCalendar.load().working_day_deadline(filed.filed_at, 15)


def test_beyond_the_calendar_counts_weekdays_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Catches a simulator that crashes on dates past the calendar's last year (2027), or floods
    # the log with one warning per dossier.
    monkeypatch.setattr(workdays, "_warned", False)
    workdays.day_kind.cache_clear()
    workdays._add_working_days.cache_clear()
    with caplog.at_level(logging.WARNING, logger=workdays.__name__):
        start = datetime(2027, 12, 20, 9, tzinfo=ICT)  # Monday
        assert add_working_days(start, 10) == datetime(2028, 1, 3, 9, tzinfo=ICT)
        events = list(
            generate(9, datetime(2028, 3, 1, tzinfo=ICT), datetime(2028, 3, 20, tzinfo=ICT), 50)
        )
    assert events
    assert len([r for r in caplog.records if "Monday-Friday" in r.getMessage()]) == 1


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


async def test_live_traffic_follows_the_history_by_default() -> None:
    # Catches a live default that floods the current month: `motcua up --simulate` topped the
    # history up to 20 events/s, and the month got 12,120 dossiers in two days against ~3,100 a
    # month of history (issue 15). Without a rate, live arrivals are the history's continuation.
    js, stop = FakeJetStream(), asyncio.Event()
    start = datetime(2025, 6, 2, 0, 0, tzinfo=UTC)  # a Monday, 07:00 in Khánh Hòa
    clock = [start]
    calls = 0

    def now() -> datetime:
        nonlocal calls
        calls += 1
        if calls > 1:
            clock[0] += timedelta(minutes=10)
        if clock[0] >= start + timedelta(days=14):
            stop.set()
        return clock[0]

    await run_simulator(
        js,  # type: ignore[arg-type]
        seed=1,
        history_days=28,
        stop=stop,
        now=now,
        tick_seconds=0,
    )
    received = [
        ev.occurred_at
        for ev in (parse_event(payload) for _, payload, _ in js.published)
        if ev.type == "dossier.received"
    ]
    history = sum(1 for at in received if start - timedelta(days=28) < at <= start)
    live = sum(1 for at in received if at > start)
    # two weeks live against four of history: the same volume per week, give or take the draw
    assert history > 1000
    assert 0.35 * history <= live <= 0.65 * history
    assert build_parser().parse_args(["up", "--simulate"]).rate is None


async def test_stop_ends_a_backfill_between_two_publishes() -> None:
    # Catches a backfill that goes on publishing after Ctrl-C: `motcua up --simulate` printed
    # "Đang dừng…" and published for minutes more (a cancellation lost in asyncio.wait_for).
    stop = asyncio.Event()

    class StoppingJetStream(FakeJetStream):
        async def publish_async(self, *args: Any, **kwargs: Any) -> asyncio.Future[_Ack]:
            if len(self.published) == 500:
                stop.set()
            return await super().publish_async(*args, **kwargs)

    js = StoppingJetStream()
    await asyncio.wait_for(
        run_simulator(
            js,  # type: ignore[arg-type]
            seed=1,
            history_days=30,
            rate_per_second=3.0,
            stop=stop,
            now=lambda: datetime(2025, 6, 2, 2, 0, tzinfo=UTC),
            tick_seconds=0,
        ),
        60,
    )
    assert len(js.published) == 501  # the publish that set it, none after
