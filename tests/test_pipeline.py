"""The whole path through a real nats-server and chDB: publish as an integrator, read the API."""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from tests.helpers import VN, dossier_event, eventually, publish, received, resolved

pytestmark = pytest.mark.asyncio(loop_scope="session")


def d(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=VN)


def stored(clickhouse: Client, agency: str) -> int:
    """Events folded into dossier state: the state is written after the raw table, so once an
    event counts here it is queryable everywhere."""
    return int(
        clickhouse.query(
            "SELECT sum(event_count) FROM dossiers WHERE agency_code = {a:String}",
            parameters={"a": agency},
        ).result_rows[0][0]
    )


async def metric(system: Any, name: str, agency: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        r = await http.get(
            f"/v1/metrics/{name}",
            params={"from": "2026-03-01", "to": "2026-03-31", "agency": agency, **params},
        )
    assert r.status_code == 200, r.text
    return r.json()


async def test_published_events_show_up_with_the_right_numbers(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: wrong timeliness classes, a supplement pause not deducted, open dossiers not
    # judged at the period end, wrong online share — end to end through NATS, ingest and the API.
    a = agency
    events = [
        received(a, "D1", d(2), due=d(6, 17)),
        resolved(a, "D1", d(4)),  # early
        received(a, "D2", d(2), due=d(3, 17), channel="direct"),
        resolved(a, "D2", d(3)),  # on time
        received(a, "D3", d(2), due=d(3, 17), channel="direct"),
        resolved(a, "D3", d(5)),  # late
        # D4: due 3/3 17:00, paused 3/2 10:00 → 3/5 10:00 (3 days), resolved 3/6 09:00:
        # end' = 3/6 09:00 − 3 d = 3/3 09:00 ≤ due, same date → on time.
        received(a, "D4", d(2), due=d(3, 17), channel="postal"),
        dossier_event("supplement_requested", a, "D4", d(2, 10)),
        dossier_event("supplement_received", a, "D4", d(5, 10)),
        resolved(a, "D4", d(6)),
        received(a, "D5", d(10), due=d(12, 17)),  # open, overdue at 3/31
        received(a, "D6", d(25), due=d(10, 17, month=4)),  # open, within deadline
    ]
    random.Random(1).shuffle(events)  # arrival order must not matter
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))

    # finished in March: D1..D4 = 4; early/on time: D1, D2, D4 = 3 → 3/4
    on_time = await metric(system, "on_time_rate", a)
    assert on_time["groups"] == [{"group": None, "numerator": 3, "denominator": 4, "rate": 0.75}]
    # late: D3 → 1/4; early: D1 → 1/4
    assert (await metric(system, "late_rate", a))["groups"][0]["numerator"] == 1
    assert (await metric(system, "early_rate", a))["groups"][0]["numerator"] == 1
    # received in March: 6; online: D1, D5, D6 → 3/6
    online = await metric(system, "online_share", a)
    assert online["groups"] == [{"group": None, "numerator": 3, "denominator": 6, "rate": 0.5}]
    # by day of receipt: 3/2 → D1 of D1..D4 = 1/4; 3/10 → 1/1; 3/25 → 1/1
    by_day = await metric(system, "online_share", a, group_by="day")
    assert [(g["group"], g["numerator"], g["denominator"]) for g in by_day["groups"]] == [
        ("2026-03-02", 1, 4),
        ("2026-03-10", 1, 1),
        ("2026-03-25", 1, 1),
    ]
    # processing minutes, supplement pause deducted: D1 2 d, D2 1 d, D3 3 d, D4 (3/2 09:00 →
    # end' 3/3 09:00) 1 d → 7 d = 10,080 min over 4 dossiers = 2,520 min on average
    avg = await metric(system, "avg_processing_minutes", a)
    assert avg["groups"] == [{"group": None, "numerator": 10080, "denominator": 4, "rate": 2520.0}]
    # open at the end of March: D5 (due 3/12, overdue), D6 (due 4/10) → 1/2
    overdue = await metric(system, "open_overdue_rate", a)
    assert overdue["groups"][0]["numerator"] == 1
    assert overdue["groups"][0]["denominator"] == 2


async def test_resolved_before_received_still_counts(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: state that only folds events in arrival order (a late `received` would otherwise
    # leave the dossier unclassified or overwrite its end).
    a = agency
    await publish(nc, resolved(a, "X1", d(20, 10)))
    await eventually(lambda: stored(clickhouse, a) == 1)
    before = await metric(system, "on_time_rate", a)
    assert before["groups"] == []  # no due date known yet: not classified, not guessed
    await publish(nc, received(a, "X1", d(18), due=d(21, 17)))
    await eventually(lambda: stored(clickhouse, a) == 2)
    after = await metric(system, "on_time_rate", a)
    # resolved 3/20 < due 3/21 → early → 1/1
    assert after["groups"] == [{"group": None, "numerator": 1, "denominator": 1, "rate": 1.0}]


async def test_same_event_twice_counts_once_everywhere(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: double counting of a republished event, whether the stream's Nats-Msg-Id window
    # absorbs it (same header) or the ingest must (no header), in raw, state and rollup tables.
    a = agency
    event = received(a, "R1", d(9), due=d(13, 17))
    await publish(nc, event)
    await publish(nc, event)  # same Nats-Msg-Id: the stream drops it
    await publish(nc, event, msg_id=None)  # no header: reaches ingest, which must drop it
    await publish(nc, event, msg_id="other")  # another msg id, same event_id: likewise
    marker = resolved(a, "R1", d(10))
    await publish(nc, marker)
    q = lambda sql: clickhouse.query(sql, parameters={"a": a}).result_rows  # noqa: E731
    # The stream keeps order, so once the marker's state is visible every copy before it has
    # been processed (the state table is written after the raw table: wait on the last one).
    await eventually(
        lambda: (
            q("SELECT resolved_at IS NOT NULL FROM dossiers WHERE agency_code = {a:String}")
            == [(True,)]
        )
    )
    assert q("SELECT count() FROM events WHERE agency_code = {a:String}") == [(2,)]
    assert q("SELECT count() FROM events FINAL WHERE agency_code = {a:String}") == [(2,)]
    assert q("SELECT event_count FROM dossiers WHERE agency_code = {a:String}") == [(2,)]
    assert q(
        "SELECT count() FROM dossiers WHERE agency_code = {a:String} AND received_at IS NOT NULL"
    ) == [(1,)]
    online = await metric(system, "online_share", a)
    assert online["groups"][0]["denominator"] == 1


async def test_invalid_events_are_dead_lettered_and_never_block(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a bad message crashing or blocking the consumer, vanishing without trace, or the
    # good events around it being lost.
    a = agency
    good_1 = received(a, "G1", d(3), due=d(5, 17))
    good_2 = received(a, "G2", d(3), due=d(5, 17))
    naive = received(a, "B1", d(3), due=d(5, 17))
    naive["occurred_at"] = "2026-03-03T09:00:00"
    other_agency = received("SOMEONEELSE", "B2", d(3), due=d(5, 17))
    missing = received(a, "B3", d(3), due=d(5, 17))
    del missing["due_at"]
    bad = [
        (b"{not json", f"motcua.events.{a}.dossier.received", "invalid_json"),
        (
            json.dumps({**good_1, "type": "dossier.exploded"}).encode(),
            f"motcua.events.{a}.dossier.exploded",
            "unknown_type",
        ),
        (json.dumps(naive).encode(), f"motcua.events.{a}.dossier.received", "invalid_field"),
        (json.dumps(missing).encode(), f"motcua.events.{a}.dossier.received", "invalid_field"),
        (
            json.dumps(other_agency).encode(),
            f"motcua.events.{a}.dossier.received",
            "agency_mismatch",
        ),
        (b"{" + b" " * 70_000 + b"}", f"motcua.events.{a}.dossier.received", "oversized"),
    ]
    dlq = await nc.subscribe(f"motcua.dlq.{a}")
    await publish(nc, good_1)
    for raw, subject, _ in bad:
        await publish(nc, raw, subject=subject)
    await publish(nc, good_2)

    def dead() -> list[tuple[str, str]]:
        return clickhouse.query(
            "SELECT reason, raw FROM dead_letters FINAL WHERE agency_code = {a:String} "
            "ORDER BY stream_seq",
            parameters={"a": a},
        ).result_rows

    await eventually(lambda: len(dead()) == len(bad) and stored(clickhouse, a) == 2)
    assert [r for r, _ in dead()] == [reason for _, _, reason in bad]
    assert [raw.encode() for _, raw in dead()][:2] == [bad[0][0], bad[1][0]]  # original bytes
    copies = [await dlq.next_msg(timeout=5) for _ in bad]
    assert [m.headers["Motcua-Reason"] for m in copies] == [r for _, _, r in bad]
    await dlq.unsubscribe()
