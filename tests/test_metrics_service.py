"""The continuous metrics service and the metric listing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.figures.definitions import METRICS
from core.figures.fact_sql import watermark_sql
from services.metrics.service import MetricsService
from tests.helpers import VN, eventually, publish, received
from tests.test_pipeline import stored

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_snapshots_record_changes_and_overdue_by_the_clock(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: overdue judged only when a dossier.late event arrives (the clock alone must turn
    # an open dossier overdue), and snapshots rewritten when nothing changed.
    a = agency
    due = datetime(2026, 11, 10, 17, tzinfo=VN)
    await publish(nc, received(a, "M1", datetime(2026, 11, 3, 9, tzinfo=VN), due=due))
    await eventually(lambda: stored(clickhouse, a) == 1)
    clock = {"now": datetime(2026, 11, 9, tzinfo=UTC)}
    service = MetricsService(clickhouse, clock=lambda: clock["now"], full_snapshot_every=1e9)

    def overdue() -> tuple[int, int]:
        row = clickhouse.query(
            "SELECT argMax(numerator, computed_at), argMax(denominator, computed_at) "
            "FROM metric_snapshots WHERE metric = 'open_overdue_rate' AND period = 'month' "
            "AND agency_code = {a:String} AND computed_at <= {at:DateTime64(3, 'UTC')}",
            # Only this service's rows: the running system's own loop writes at the real time.
            parameters={"a": a, "at": clock["now"]},
        ).result_rows[0]
        return int(row[0]), int(row[1])

    assert service.compute_once() > 0
    assert overdue() == (0, 1)  # 9/11: open, due 10/11 → within deadline
    assert service.compute_once() == 0  # nothing changed, nothing written
    clock["now"] = datetime(2026, 11, 11, tzinfo=UTC)  # past due, no event at all
    assert service.compute_once() > 0
    assert overdue() == (1, 1)


async def test_metric_catalogue_and_readiness_over_http(system: Any) -> None:
    # Catches: a metric without a Vietnamese label or definition, readiness that says ready
    # without checking the store and the broker, and an unknown metric answered with a 500.
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        listing = (await http.get("/v1/metrics")).json()
        ready = await http.get("/readyz")
        missing = await http.get("/v1/metrics/no_such_metric")
        wrong = await http.get("/v1/metrics/feedback_open?domain=dat_dai")
        asyncapi = await http.get("/asyncapi.json")
    assert {m["id"] for m in listing} == set(METRICS)
    assert all(m["label"] and m["description"] for m in listing)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"clickhouse": True, "nats": True}
    assert missing.status_code == 404
    assert wrong.status_code == 422
    assert asyncapi.status_code == 200


async def test_the_running_system_evaluates_the_plans_in_force(
    system: Any, clickhouse: Client
) -> None:
    # Catches: a plan monitor built but never started by the runtime, and plans in force today
    # that never reach target_status (what the page, the boards and /v1/targets read).
    await eventually(lambda: system.metrics.status.plans_runs >= 1, timeout=60)
    assert system.metrics.status.plans_last_error is None
    rows = clickhouse.query(
        "SELECT DISTINCT target_id FROM target_status WHERE plan = 'kh-demo-continuing@1' "
        "AND period_start = {y:Date}",
        parameters={"y": datetime.now(VN).date().replace(month=1, day=1)},
    ).result_rows
    assert {r[0] for r in rows} >= {"VD.A.VIII.7-online-share", "VD.A.IV.5-land-late"}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        pipeline = (await http.get("/v1/pipeline")).json()
    assert pipeline["metrics"]["plans_runs"] >= 1


async def test_a_cycle_recomputes_only_the_agencies_whose_data_changed(
    system: Any, nc: NatsClient, clickhouse: Client
) -> None:
    # Catches: a metrics cycle that recomputes every figure of every agency each time (at a
    # province's history that work competes with the ingest), and an incremental one that
    # misses an agency with new events.
    import uuid

    a, b = (f"T{uuid.uuid4().hex[:10].upper()}" for _ in range(2))
    day = datetime(2026, 11, 3, 9, tzinfo=VN)
    due = datetime(2026, 11, 20, 17, tzinfo=VN)
    for code in (a, b):
        await publish(nc, received(code, "I1", day, due=due))
    await eventually(lambda: stored(clickhouse, a) == 1 and stored(clickhouse, b) == 1)
    await eventually(lambda: _parts(clickhouse, a) and _parts(clickhouse, b))
    clock = {"now": datetime(2026, 11, 9, tzinfo=UTC)}
    service = MetricsService(clickhouse, clock=lambda: clock["now"], full_snapshot_every=1e9)
    service.compute_once()
    assert service.status.last_full
    # The first cycle reads only the parts written lately (snapshots._first_since), and still
    # stamps its snapshots with the newest ingest time of what it read.
    first = clickhouse.query(
        "SELECT min(data_watermark) FROM metric_snapshots WHERE agency_code IN ({a:String}, "
        "{b:String}) AND computed_at = {at:DateTime64(3, 'UTC')}",
        parameters={"a": a, "b": b, "at": clock["now"]},
    ).result_rows[0][0]
    ingested = clickhouse.query(
        "SELECT max(ingested_at) FROM events WHERE agency_code IN ({a:String}, {b:String})",
        parameters={"a": a, "b": b},
    ).result_rows[0][0]
    assert first.replace(tzinfo=UTC) >= ingested.replace(tzinfo=UTC)
    await publish(nc, received(a, "I2", day, due=due, channel="online"))
    await eventually(lambda: stored(clickhouse, a) == 2)
    await eventually(lambda: _parts(clickhouse, a) == 2)
    clock["now"] = datetime(2026, 11, 9, 1, tzinfo=UTC)  # same local day
    assert service.compute_once() > 0
    assert not service.status.last_full
    assert a in service.status.last_agency_codes
    assert b not in service.status.last_agency_codes


def _parts(clickhouse: Client, agency: str) -> int:
    return int(
        clickhouse.query(
            "SELECT uniqExact(dossier_id) FROM dossier_parts WHERE agency_code = {a:String}",
            parameters={"a": agency},
        ).result_rows[0][0]
    )


async def test_the_running_service_snapshots_what_its_refolder_folded(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: the running service's cycle (which reads the facts alone, beside its refolder)
    # failing or never snapshotting a new agency (its errors are only logged), and a snapshot
    # whose data watermark is older than the event it counts.
    at = datetime.now(VN) - timedelta(seconds=1)  # this month's snapshot counts it
    await publish(nc, received(agency, "S1", at, due=at + timedelta(days=5), channel="online"))
    await eventually(lambda: stored(clickhouse, agency) == 1)

    def snapshot() -> tuple[int, int, datetime] | None:
        rows = clickhouse.query(
            "SELECT numerator, denominator, data_watermark FROM metric_snapshots "
            "WHERE metric = 'online_share' AND period = 'month' AND agency_code = {a:String} "
            "ORDER BY computed_at DESC LIMIT 1",
            parameters={"a": agency},
        ).result_rows
        return (int(rows[0][0]), int(rows[0][1]), rows[0][2]) if rows else None

    # a cycle snapshots what the refolder has folded: once its watermark passes the dossier's
    # parts, ask now
    await eventually(
        lambda: (
            clickhouse.query(
                f"SELECT {watermark_sql('dossier')} >= max(folded_at) FROM dossier_parts "
                "WHERE agency_code = {a:String}",
                parameters={"a": agency},
            ).result_rows[0][0]
            == 1
        )
    )
    system.metrics.trigger()
    await eventually(lambda: snapshot() is not None)
    taken = snapshot()
    assert taken is not None and taken[:2] == (1, 1)
    ingested = clickhouse.query(
        "SELECT max(ingested_at) FROM events WHERE agency_code = {a:String}",
        parameters={"a": agency},
    ).result_rows[0][0]
    assert taken[2].replace(tzinfo=UTC) >= ingested.replace(tzinfo=UTC)
    assert system.metrics.status.last_error is None


async def test_the_metrics_service_queries_below_the_ingest_in_cpu_priority(
    clickhouse: Client, clickhouse_url: str
) -> None:
    # Catches: a client of the metrics service (figures, plans, refolder) made without the
    # setting, whose queries then took the cores the ingest's inserts needed.
    from core.plans.source import PlanSource
    from motcua.settings import Settings
    from services.metrics.main import connect_metrics, start_metrics

    assert Settings().metrics_nice == 19
    settings = Settings(clickhouse_url=clickhouse_url, metrics_nice=7)
    service = start_metrics(connect_metrics(settings), settings, PlanSource(None), None)
    assert service._refolder is not None
    for client in (service._client, service._refolder._client):
        assert client.command("SELECT getSetting('os_threads_nice_value_query')") == 7
        assert client.command("SELECT getSetting('os_threads_nice_value_materialized_view')") == 7


async def test_a_stop_waits_for_the_query_in_flight_not_the_whole_cycle(
    clickhouse: Client, clickhouse_url: str
) -> None:
    # Catches (issue 14, finding 7): a stop waiting for a whole figure computation (`motcua up`
    # not exiting within 30 s of SIGINT while a 22 s cycle ran on a loaded machine). The test
    # holds the cycle's first query at a gate of its own, stops the service, then opens it:
    # no query of the cycle may start after the stop.
    import threading

    from core.plans.source import PlanSource
    from motcua.settings import Settings
    from services.metrics.main import connect_metrics, start_metrics

    settings = Settings(clickhouse_url=clickhouse_url, metrics_interval=3600.0)
    client = connect_metrics(settings)
    real = client.query
    gate, held, stopped = threading.Event(), threading.Event(), threading.Event()
    after_stop: list[str] = []

    def query(sql: str, *args: Any, **kwargs: Any) -> Any:
        if stopped.is_set():
            after_stop.append(sql[:80])
        held.set()
        assert gate.wait(60), "the test never opened the gate"
        return real(sql, *args, **kwargs)

    client.query = query  # type: ignore[method-assign]
    service = start_metrics(client, settings, PlanSource(None), None)
    running = asyncio.create_task(service.run())
    await eventually(held.is_set)  # the first cycle is at its first query
    stopped.set()
    service.stop()
    gate.set()
    await asyncio.wait_for(running, 120)  # a guard against a hang, not a measure of speed
    assert after_stop == []
    assert service.status.last_error is None  # a stop is no failure
