"""Auditors get the same numbers every time they ask, and every number says where it came from."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.figures.definitions import METRICS
from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from tests.helpers import dossier_event, eventually, publish, received, resolved
from tests.test_pipeline import d, stored

pytestmark = pytest.mark.asyncio(loop_scope="session")
MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


async def test_as_of_answers_never_change_when_more_events_arrive(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: an as-of answer that silently includes events stored after the as-of instant,
    # and provenance that does not say which data and rules produced the figure.
    a = agency
    for i in range(4):
        await publish(nc, received(a, f"A{i}", d(2), due=d(6, 17), channel="online"))
    await eventually(lambda: stored(clickhouse, a) == 4)
    await asyncio.sleep(0.2)
    as_of = datetime.now(UTC)
    await asyncio.sleep(5.2)  # the API refuses as-of instants that could still gain rows
    params = {**MARCH, "agency": a, "as_of": as_of.isoformat()}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        before = (await http.get("/v1/metrics/online_share", params=params)).json()
        for i in range(3):
            await publish(nc, received(a, f"B{i}", d(3), due=d(6, 17), channel="direct"))
        await publish(nc, resolved(a, "A0", d(3)))
        await eventually(lambda: stored(clickhouse, a) == 8)
        after = (await http.get("/v1/metrics/online_share", params=params)).json()
        live = (await http.get("/v1/metrics/online_share", params={**MARCH, "agency": a})).json()
        future = await http.get(
            "/v1/metrics/online_share",
            params={**MARCH, "as_of": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        )
    # 4 received online by as_of → 4/4, then and forever; live: 4 online of 7 received
    assert (
        before["groups"]
        == after["groups"]
        == [{"group": None, "numerator": 4, "denominator": 4, "rate": 1.0}]
    )
    assert before["provenance"] == after["provenance"]
    assert before["provenance"]["events"] == 4
    assert before["provenance"]["rule_set"]
    assert live["groups"][0]["denominator"] == 7
    assert future.status_code == 422


async def test_folding_the_raw_log_equals_the_materialized_state(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: drift between the as-of read (the facts version valid then, or the parts ingested
    # by then) and the live read of core/figures/facts.py, which would make as-of and live
    # figures disagree.
    a = agency
    events = []
    for i in range(30):
        events.append(
            received(
                a,
                f"F{i}",
                d(1 + i % 20),
                due=d(3 + i % 20, 17),
                channel=("online", "direct", "postal")[i % 3],
            )
        )
        if i % 4 == 0:
            events.append(dossier_event("supplement_requested", a, f"F{i}", d(2 + i % 20, 8)))
            events.append(dossier_event("supplement_received", a, f"F{i}", d(4 + i % 20, 8)))
        if i % 3 != 2:
            events.append(resolved(a, f"F{i}", d(2 + (i * 7) % 25)))
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    now = datetime.now(UTC)
    period = Period.from_dates(datetime(2026, 3, 1).date(), datetime(2026, 3, 31).date())
    for metric_id in METRICS:
        for group_by in (None, "day"):
            args: dict[str, Any] = {
                "period": period,
                "now": now,
                "filters": Filters(agencies=(a,)),
                "group_by": group_by,
            }
            live = metric_query(metric_id, **args).run(clickhouse)
            folded = metric_query(metric_id, as_of=now, **args).run(clickhouse)
            assert [(r.group, r.numerator, r.denominator, r.events) for r in live] == [
                (r.group, r.numerator, r.denominator, r.events) for r in folded
            ], metric_id


async def test_a_dossier_trail_in_order_with_provenance(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a trail out of order, missing provenance, or unknown ids answered with 200.
    a = agency
    await publish(nc, resolved(a, "T1", d(5)))
    await publish(nc, received(a, "T1", d(2), due=d(6, 17)))
    await eventually(lambda: stored(clickhouse, a) == 2)
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        trail = (await http.get("/v1/dossiers/T1/events", params={"agency": a})).json()
        missing = await http.get("/v1/dossiers/NOPE/events", params={"agency": a})
    assert [e["type"] for e in trail["events"]] == ["dossier.received", "dossier.resolved"]
    assert all(e["subject"].startswith(f"motcua.events.{a}.") for e in trail["events"])
    assert all(e["stream_seq"] > 0 and e["ingested_at"] for e in trail["events"])
    assert missing.status_code == 404
