"""Silent feeds through the real pipeline (issue 18): dossiers and manifests published to
nats-server, stored by the ingest in chDB, judged by the feed monitor at instants the test
chooses, alerts published on motcua.alerts.<agency> and read back over HTTP from /v1/alerts.

Every expected volume below is the median of the test's own daily counts, worked out by hand in
the comments. The rule is the default one but shorter (8 working days read, 5 of history), so a
feed needs a week of events, not a month.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.feeds import FeedMonitor, FeedRule
from core.feeds.alerts import OpenFeedAlert, transitions
from core.feeds.judge import judge_volume, judged_day, window
from core.plans.alert_model import OpenAlert
from core.plans.alerts import withdrawn
from core.reference.calendar import WorkingCalendar
from services.metrics.main import jetstream_publisher
from services.metrics.service import MetricsService
from tests.helpers import VN, eventually, publish, received

RULE = FeedRule(days=8, min_days=5, ratio=0.2, min_volume=10, grace=timedelta(hours=6))
SOURCE = "motcua-igate"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), VN).astimezone(UTC)


def receipts(agency: str, source: str, day: date, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        start = datetime.combine(day, time(8), VN) + timedelta(minutes=7 * i)
        event = received(agency, f"{source}-{day:%m%d}-{i}", start, due=start + timedelta(days=10))
        out.append({**event, "source": source})
    return out


def manifest(agency: str, source: str, day: date, dossiers: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "manifest.daily",
        "schema_version": 1,
        "occurred_at": at(day + timedelta(days=1), 0, 15).isoformat(),
        "agency_code": agency,
        "source": source,
        "day": day.isoformat(),
        "dossiers_received": dossiers,
        "dossiers_finished": 0,
        "dossiers_open": dossiers,
        "feedback_filed": 0,
        "feedback_answered": 0,
    }


async def send(nc: NatsClient, clickhouse: Client, events: list[dict[str, Any]]) -> None:
    """Publish and wait until the ingest has stored them (raw rows of those event ids)."""
    await asyncio.gather(*(publish(nc, e) for e in events))
    ids = [e["event_id"] for e in events]

    def stored() -> bool:
        rows = clickhouse.query(
            "SELECT uniqExact(event_id) FROM events WHERE has({ids:Array(UUID)}, event_id)",
            parameters={"ids": ids},
        ).result_rows
        return int(rows[0][0]) == len(ids)

    await eventually(stored, timeout=60)
    if any(e["type"] == "manifest.daily" for e in events):  # the view that fills `manifests`
        await eventually(
            lambda: (
                clickhouse.query(
                    "SELECT count() FROM manifests WHERE has({ids:Array(UUID)}, event_id)",
                    parameters={"ids": ids},
                ).result_rows[0][0]
                >= sum(e["type"] == "manifest.daily" for e in events)
            )
        )


def march(*days: int) -> list[date]:
    return [date(2026, 3, d) for d in days]


async def alerts_http(system: Any, agency: str, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        r = await http.get("/v1/alerts", params={"agency": agency, **params})
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def stored_alerts(clickhouse: Client, agency: str) -> list[tuple[Any, ...]]:
    return clickhouse.query(
        "SELECT kind, seq, state, status FROM alerts FINAL WHERE agency_code = {a:String} "
        "ORDER BY kind, seq",
        parameters={"a": agency},
    ).result_rows


@pytest.mark.asyncio(loop_scope="session")
async def test_a_silent_feed_alerts_once_and_resolves_once(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: no alert when a busy feed stops; an alert before the day has passed (and its
    # grace); an alert sent again at every evaluation, or again after a restart; one that never
    # resolves once the feed is back; an alert on the agency's other, healthy feed; and a
    # missing-manifest alert for a feed that never sent manifests.
    silent_source, steady_source = SOURCE, "dvc-quocgia"
    history = march(2, 3, 4, 5, 6, 9, 10)
    counts = [10, 14, 12, 11, 13, 12, 15]
    events: list[dict[str, Any]] = []
    for day, n in zip(history, counts, strict=True):
        events += receipts(agency, silent_source, day, n)
    for day in [*history, *march(11, 12, 13)]:
        events += receipts(agency, steady_source, day, 11)
    await send(nc, clickhouse, events)

    messages: list[tuple[str, dict[str, Any]]] = []

    async def on_alert(msg: Any) -> None:
        messages.append((msg.headers["Nats-Msg-Id"], json.loads(msg.data)))

    sub = await nc.subscribe(f"motcua.alerts.{agency}", cb=on_alert)
    publish_alert = jetstream_publisher(nc)
    monitor = FeedMonitor(clickhouse, RULE, publish=publish_alert, agencies=[agency])

    # 11/03 at 10:00: the day judged is 10/03, whose history (2/03–9/03: 10, 14, 12, 11, 13,
    # 12) has the median 12; 15 dossiers is normal.
    run = await monitor.step(at(date(2026, 3, 11), 10))
    judged = {j.feed: j for j in run.volumes}
    assert run.day == date(2026, 3, 10) and not run.transitions
    assert judged[(silent_source, agency)].reason == "normal"
    assert judged[(silent_source, agency)].expected == 12
    # 12/03 at 05:59: 11/03 has ended, but not its 6 hours of grace.
    assert not (await monitor.step(at(date(2026, 3, 12), 5, 59))).transitions
    # 12/03 at 06:00: 11/03 is judged, 0 dossiers against the median of 2/03–10/03
    # (10, 11, 12, 12, 13, 14, 15 → 12): silent.
    run = await monitor.step(at(date(2026, 3, 12), 6))
    assert [(t.kind, t.state, t.seq) for t in run.transitions] == [("silent_feed", "firing", 1)]
    fired = run.transitions[0]
    assert fired.evidence["source"] == silent_source
    assert fired.evidence["days"] == [date(2026, 3, 11)]
    assert fired.evidence["volumes"] == [0] and fired.evidence["expected"] == 12
    assert fired.summary == (
        f"Nguồn dữ liệu {silent_source} của {agency} không gửi hồ sơ ngày 11/03/2026 "
        "(bình thường khoảng 12 hồ sơ mỗi ngày làm việc)."
    )
    assert not (await monitor.step(at(date(2026, 3, 12), 12))).transitions

    firing = await alerts_http(system, agency)
    assert [(a["kind"], a["state"], a["severity"]) for a in firing] == [
        ("silent_feed", "firing", "critical")
    ]
    assert firing[0]["evidence"]["days"] == ["2026-03-11"]
    assert firing[0]["summary"] == fired.summary

    # A restart on 13/03: 12/03 is silent too, and the alert is already firing.
    monitor = FeedMonitor(clickhouse, RULE, publish=publish_alert, agencies=[agency])
    assert not (await monitor.step(at(date(2026, 3, 13), 7))).transitions

    # The feed is back on 13/03 (12 dossiers ≥ 0.2 × 12): resolved, once, naming the gap.
    await send(nc, clickhouse, receipts(agency, silent_source, date(2026, 3, 13), 12))
    run = await monitor.step(at(date(2026, 3, 14), 7))
    assert [(t.kind, t.state, t.seq) for t in run.transitions] == [("silent_feed", "resolved", 2)]
    back = run.transitions[0].evidence
    assert back["days"] == march(11, 12) and back["volumes"] == [0, 0] and back["volume"] == 12
    # Monday 16/03 before its end: 13/03 is still the day judged, nothing new.
    assert not (await monitor.step(at(date(2026, 3, 16), 7))).transitions

    await eventually(lambda: len(messages) >= 2)
    await sub.unsubscribe()
    alert = f"feed/silent_feed/{agency}/{silent_source}"
    assert [(msg_id, m["state"]) for msg_id, m in messages] == [
        (f"{alert}#1", "firing"),
        (f"{alert}#2", "resolved"),
    ]
    assert stored_alerts(clickhouse, agency) == [
        ("silent_feed", 1, "firing", "silent"),
        ("silent_feed", 2, "resolved", "normal"),
    ]
    assert await alerts_http(system, agency) == []
    every = await alerts_http(system, agency, state="all", history="true")
    assert [(a["alert_id"], a["seq"], a["state"]) for a in every] == [
        (alert, 2, "resolved"),
        (alert, 1, "firing"),
    ]
    assert every[0]["summary"].startswith(f"Đã hết: Nguồn dữ liệu {silent_source} của {agency}")


@pytest.mark.asyncio(loop_scope="session")
async def test_no_alert_over_tet(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: the days of Tết (14/02–22/02/2026: five weekdays of holidays between two
    # weekends) judged as silent working days, and Tết's empty days dragging the expectation
    # down after it. A Monday-Friday calendar would judge Monday 16/02 silent.
    before = [date(2026, 2, d) for d in (5, 6, 9, 10, 11, 12, 13)]
    counts = [12, 10, 14, 11, 13, 12, 12]
    events: list[dict[str, Any]] = []
    for day, n in zip(before, counts, strict=True):
        events += receipts(agency, SOURCE, day, n)
    await send(nc, clickhouse, events)
    monitor = FeedMonitor(clickhouse, RULE, agencies=[agency])
    during = [at(date(2026, 2, d), h) for d, h in ((14, 7), (16, 12), (18, 12), (20, 23), (23, 5))]
    for now in during:
        run = await monitor.step(now)
        [j] = run.volumes
        # Friday 13/02 is the day judged throughout; its history 5/02–12/02 (12, 10, 14, 11,
        # 13, 12 → 10, 11, 12, 12, 13, 14) has the median 12, so it was watched, and is normal.
        assert (run.day, j.reason, j.expected, j.volume) == (date(2026, 2, 13), "normal", 12, 12)
        assert not run.transitions
    # Back on Monday 23/02: the window steps over Tết, straight from 13/02 to 23/02.
    await send(nc, clickhouse, receipts(agency, SOURCE, date(2026, 2, 23), 11))
    run = await monitor.step(at(date(2026, 2, 24), 7))
    [j] = run.volumes
    assert j.days == (*before, date(2026, 2, 23))
    # 5/02–13/02: 10, 11, 12, 12, 12, 13, 14 → 12.
    assert (j.reason, j.expected, j.volume) == ("normal", 12, 11) and not run.transitions
    assert stored_alerts(clickhouse, agency) == []


@pytest.mark.asyncio(loop_scope="session")
async def test_small_and_new_feeds_raise_no_alert(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: an alert storm from small communes (a quiet day of a 4-a-day feed), and an
    # alert for a new feed that has no history to expect anything from.
    small, new = "xa-small", "new-system"
    events: list[dict[str, Any]] = []
    for day, n in zip(march(2, 3, 4, 5, 6, 9, 10), [3, 5, 4, 2, 4, 3, 5], strict=True):
        events += receipts(agency, small, day, n)
    for day in march(9, 10):
        events += receipts(agency, new, day, 20)
    await send(nc, clickhouse, events)
    run = await FeedMonitor(clickhouse, RULE, agencies=[agency]).step(at(date(2026, 3, 12), 7))
    judged = {j.feed[0]: j for j in run.volumes}
    # The small feed: 0 on 11/03 against a median of 4 (2, 3, 3, 4, 4, 5, 5), under 10.
    assert (judged[small].reason, judged[small].expected, judged[small].volume) == (
        "small_feed",
        4,
        0,
    )
    # The new feed: two days of history, fewer than 5.
    assert (judged[new].reason, judged[new].expected, judged[new].history_days) == (
        "short_history",
        None,
        2,
    )
    assert not run.transitions and stored_alerts(clickhouse, agency) == []


@pytest.mark.asyncio(loop_scope="session")
async def test_a_feed_that_stops_sending_manifests(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: no alert when a feed that sends daily manifests stops; an alert sent again while
    # the manifests are still missing; a weekend without manifests judged as missing; and a
    # resolution that hides a day the feed never sent.
    sent = march(2, 3, 4, 5, 6, 9, 10)
    await send(nc, clickhouse, [manifest(agency, SOURCE, d, 5) for d in sent])
    publish_alert = jetstream_publisher(nc)
    monitor = FeedMonitor(clickhouse, RULE, publish=publish_alert, agencies=[agency])
    assert not (await monitor.step(at(date(2026, 3, 11), 10))).transitions

    run = await monitor.step(at(date(2026, 3, 12), 7))  # 11/03 has passed without one
    assert [(t.kind, t.state, t.seq) for t in run.transitions] == [
        ("missing_manifest", "firing", 1)
    ]
    assert run.transitions[0].summary == (
        f"Nguồn dữ liệu {SOURCE} của {agency} không gửi bảng kê cuối ngày cho ngày 11/03/2026."
    )
    assert not run.volumes  # no dossiers at all: no silent-feed judgement either
    assert not (await monitor.step(at(date(2026, 3, 13), 7))).transitions  # 12/03 neither
    firing = await alerts_http(system, agency)
    assert [(a["kind"], a["evidence"]["days"]) for a in firing] == [
        ("missing_manifest", ["2026-03-11"])
    ]

    # The feed resumes with 12/03's manifest and never sends 11/03's: resolved, naming 11/03.
    await send(nc, clickhouse, [manifest(agency, SOURCE, date(2026, 3, 12), 5)])
    run = await monitor.step(at(date(2026, 3, 13), 8))
    assert [(t.state, t.seq) for t in run.transitions] == [("resolved", 2)]
    assert run.transitions[0].evidence["still_missing"] == march(11)
    assert "còn thiếu bảng kê ngày 11/03/2026" in run.transitions[0].summary
    # 13/03's arrives; Saturday and Sunday have none and are not judged.
    await send(nc, clickhouse, [manifest(agency, SOURCE, date(2026, 3, 13), 5)])
    assert not (await monitor.step(at(date(2026, 3, 16), 12))).transitions
    assert stored_alerts(clickhouse, agency) == [
        ("missing_manifest", 1, "firing", "missing"),
        ("missing_manifest", 2, "resolved", "received"),
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_metrics_service_runs_the_feed_monitor(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a feed monitor handed to the metrics service and never run, and its outcome
    # missing from the service's status (GET /v1/pipeline shows it).
    await send(nc, clickhouse, [manifest(agency, SOURCE, d, 1) for d in march(9, 10)])
    feeds = FeedMonitor(clickhouse, RULE, agencies=[agency])
    service = MetricsService(
        clickhouse, feeds=feeds, clock=lambda: at(date(2026, 3, 12), 7), interval=3600
    )
    await service._evaluate_feeds()
    s = service.status
    assert (s.feeds_runs, s.feeds_last_day, s.feeds_last_transitions) == (1, march(11)[0], 1)
    assert s.feeds_firing == 1 and s.feeds_last_error is None


@pytest.mark.pure
def test_working_days_judged_skip_holidays_and_keep_make_up_days() -> None:
    # Catches: a make-up Saturday (10/01/2026, worked for Friday 02/01) left unjudged, and New
    # Year's holidays counted as working days of a feed's history.
    calendar = WorkingCalendar.load([2025, 2026])
    assert judged_day(at(date(2026, 1, 11), 7), RULE, calendar) == date(2026, 1, 10)
    assert judged_day(at(date(2026, 1, 12), 5), RULE, calendar) == date(2026, 1, 10)
    assert window(date(2026, 1, 10), RULE, calendar) == [
        date(2025, 12, 30),
        date(2025, 12, 31),
        date(2026, 1, 5),
        date(2026, 1, 6),
        date(2026, 1, 7),
        date(2026, 1, 8),
        date(2026, 1, 9),
        date(2026, 1, 10),
    ]


@pytest.mark.pure
def test_a_long_silence_is_judged_against_the_volume_before_it() -> None:
    # Catches: a silence of several days judged against a history that already holds its
    # first silent days (the expectation would sink and the alert's days be cut short).
    days = march(2, 3, 4, 5, 6, 9, 10, 11)
    by_day = dict(zip(days, [20, 22, 18, 20, 21, 0, 1, 0], strict=True))
    j = judge_volume((SOURCE, "X"), days, by_day, RULE)
    # The run 9/03–11/03, against 2/03–6/03 (18, 20, 20, 21, 22 → 20): 0, 1, 0 < 4.
    assert (j.reason, j.expected, j.silent_days) == ("silent", 20, tuple(march(9, 10, 11)))


@pytest.mark.pure
def test_the_plans_never_withdraw_a_feed_alert() -> None:
    # Catches: the plan monitor resolving a firing feed alert as "withdrawn" because no plan in
    # force names it (feed alerts have no plan).
    feed_alert = OpenAlert(
        "feed/silent_feed/X/s", 1, "firing", "silent", "", "", "X", date(2026, 3, 11), "silent_feed"
    )
    assert withdrawn({feed_alert.alert_id: feed_alert}, set(), datetime.now(UTC)) == []


@pytest.mark.pure
def test_late_events_that_fill_the_silent_day_resolve_the_alert() -> None:
    # Catches: an alert that stays firing after the integrator republished the day it had lost
    # (the day judged is the same one, now full), or that resolves against a history already
    # sunk by the silence instead of the volume the alert was raised against.
    days = march(2, 3, 4, 5, 6, 9, 10, 11)
    now = at(date(2026, 3, 12), 9)
    alert = "feed/silent_feed/X/" + SOURCE
    opened = {
        alert: OpenFeedAlert(
            alert, 1, "firing", "silent", "silent_feed", SOURCE, "X", march(11)[0], expected=12.0
        )
    }
    # Until the day is filled: 2 dossiers < 0.2 × 12 = 2.4, still silent, nothing new.
    low = dict(zip(days, [10, 14, 12, 11, 13, 12, 15, 2], strict=True))
    assert transitions([judge_volume((SOURCE, "X"), days, low, RULE)], [], opened, now, RULE) == []
    # Filled: 11 dossiers on 11/03.
    full = {**low, date(2026, 3, 11): 11}
    [t] = transitions([judge_volume((SOURCE, "X"), days, full, RULE)], [], opened, now, RULE)
    assert (t.alert_id, t.seq, t.state, t.period_start) == (alert, 2, "resolved", march(11)[0])
    assert t.evidence["volume"] == 11 and t.evidence["expected"] == 12 and t.evidence["days"] == []
