"""Admission to the keyed routes (services/api/admission.py) and work for clients that have gone
(core/storage/pool.py), over real HTTP on the session's chDB store (issue 14, finding 4).

The figure queries run on a pool whose clients wait at a gate the test opens: that is how the
test holds requests in flight for as long as it needs, on a machine of any speed. The gate is
the test's hand on the real client, not a stand-in for it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.plans.loader import load_plans
from core.storage import pool as pool_module
from core.storage.clickhouse import connect
from core.storage.pool import pooled
from services.api.admission import Admission
from services.api.keys import Role
from tests.helpers import TEST_ADMIN_HEADERS, admin_key_store, eventually, publish, received
from tests.test_targets_year import _api

FIGURE = "/v1/metrics/on_time_rate"
PARAMS = {"from": "2026-01-01", "to": "2026-12-31", "group_by": "agency"}


class Gate:
    """Every figure query (not the key lookups) waits here until the test opens it; records
    how many ran and the request-gone flag each ran under."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.queries = 0
        self.flags: list[threading.Event | None] = []
        self._lock = threading.Lock()

    def wrap(self, client: Client) -> Client:
        real = client.query

        def query(sql: str, *args: Any, **kwargs: Any) -> Any:
            if "api_keys" not in sql:
                with self._lock:
                    self.queries += 1
                    self.flags.append(pool_module._gone.get())
                assert self.open.wait(60), "the test never opened the gate"
            return real(sql, *args, **kwargs)

        client.query = query  # type: ignore[method-assign]
        return client


@pytest.fixture
def gate(clickhouse_url: str) -> Iterator[tuple[Gate, Client]]:
    g = Gate()
    client = pooled(lambda: g.wrap(connect(clickhouse_url)), 4)
    try:
        yield g, client
    finally:
        g.open.set()
        client.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_key_runs_its_share_queues_a_few_and_is_refused_past_them(
    clickhouse: Client, gate: tuple[Gate, Client]
) -> None:
    # Catches (issue 14, finding 4): one key's burst taking every thread and client of the API
    # (200 requests: none answered within 60 s, the API unresponsive for 11 minutes), a key
    # starving the others, and a refusal without Retry-After.
    g, pool = gate
    _, other_token = admin_key_store(clickhouse).create("admission test", Role.viewer, "test")
    other = {"Authorization": f"Bearer {other_token}"}
    admission = Admission(per_key=2, in_flight=3, queue_per_key=1, queue_seconds=60)
    async with (
        _api(pool, load_plans(), admission=admission) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):

        def ask(headers: dict[str, str]) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(http.get(FIGURE, params=PARAMS, headers=headers))

        first = [ask(TEST_ADMIN_HEADERS) for _ in range(2)]
        await eventually(lambda: admission.running.total() == 2)
        queued = ask(TEST_ADMIN_HEADERS)  # the key runs two: this one waits its turn
        await eventually(lambda: sum(map(len, admission.waiting.values())) == 1)
        refused = await http.get(FIGURE, params=PARAMS, headers=TEST_ADMIN_HEADERS)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "quá nhiều yêu cầu" in refused.json()["detail"]

        # another key still gets the room left (three in all), then waits for it
        others = [ask(other)]
        await eventually(lambda: admission.running.total() == 3)
        others.append(ask(other))
        await eventually(lambda: sum(map(len, admission.waiting.values())) == 2)
        assert not any(t.done() for t in [*first, queued, *others])
        assert (await http.get("/healthz")).status_code == 200  # never waits behind figures

        g.open.set()
        answers = await asyncio.gather(*first, queued, *others)
        assert [a.status_code for a in answers] == [200] * 5
        # the same figure for everyone (judged at each request's own instant)
        figures = [a.json()["groups"] for a in answers]
        assert all(f == figures[0] for f in figures)
        assert admission.refused == {429: 1}
        assert not admission.running and not admission.waiting


@pytest.mark.asyncio(loop_scope="session")
async def test_a_request_whose_client_has_gone_runs_no_more_queries(
    clickhouse: Client, gate: tuple[Gate, Client]
) -> None:
    # Catches (issue 14, finding 4): the API computing every remaining query of requests whose
    # clients had given up ("kept computing after the clients had gone").
    g, pool = gate
    admission = Admission()
    async with (
        _api(pool, load_plans(), admission=admission) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        g.open.set()
        whole = await http.get(FIGURE, params=PARAMS, headers=TEST_ADMIN_HEADERS)
        assert whole.status_code == 200
        asked = g.queries
        assert asked >= 2, "the figure must take several queries for this test to mean anything"

        g.open.clear()
        g.queries, g.flags = 0, []
        with pytest.raises(httpx.ReadTimeout):  # the client gives up while the first query runs
            await http.get(FIGURE, params=PARAMS, headers=TEST_ADMIN_HEADERS, timeout=0.5)
        await eventually(lambda: g.queries >= 1)
        flag = g.flags[0]
        assert flag is not None  # the query ran under the request's flag
        await eventually(flag.is_set)  # the server has seen the client go
        # what the request had started before its client went (its first reads run side by
        # side, so one or two), all under its flag
        started = g.queries
        assert set(g.flags) == {flag}
        g.open.set()
        await eventually(lambda: not admission.running)
        assert g.queries == started, f"{g.queries - started} queries started for nobody"
        assert started < asked, f"all of the request's {asked} queries ran for nobody"
        assert admission.abandoned == 1

        again = await http.get(FIGURE, params=PARAMS, headers=TEST_ADMIN_HEADERS)
        assert again.status_code == 200
        assert again.json()["groups"] == whole.json()["groups"]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_burst_from_one_key_leaves_health_and_the_ingest_working(
    system: Any, nc: NatsClient, agency: str
) -> None:
    # Catches (issue 14, finding 4): a burst from one key stalling /healthz and the ingest, and
    # errors or hung requests instead of answers and 429s.
    running = system
    async with httpx.AsyncClient(base_url=running.api_url, timeout=60) as http:
        burst = [
            asyncio.create_task(http.get(FIGURE, params=PARAMS, headers=running.api_headers))
            for _ in range(80)
        ]
        health: list[int] = []
        ids = [f"ADM-BURST-{i}" for i in range(20)]
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        for dossier_id in ids:
            await publish(nc, received(agency, dossier_id, at, due=at + timedelta(days=5)))

        def stored() -> bool:
            n = running.clickhouse.query(
                "SELECT uniqExact(dossier_id) FROM dossier_parts "
                "WHERE agency_code = {a:String} AND startsWith(dossier_id, 'ADM-BURST-')",
                parameters={"a": agency},
            ).result_rows[0][0]
            return int(n) == len(ids)

        while not all(t.done() for t in burst) or not stored():
            health.append((await http.get("/healthz", timeout=10)).status_code)
            await asyncio.sleep(0.05)
        statuses = [t.result().status_code for t in burst]
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses
    assert health and set(health) == {200}
    assert stored()
