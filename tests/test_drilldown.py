"""From any figure to the list of items behind it."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
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
from tests.helpers import TEST_ADMIN_HEADERS, eventually, publish, received, resolved
from tests.test_pipeline import d, stored
from tests.test_targets_year import _api

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_numerator_and_denominator_lists_match_the_figure(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a drill-down whose items disagree with the figure's counts, broken paging, or an
    # export that drops rows.
    a = agency
    for i in range(7):
        await publish(nc, received(a, f"L{i}", d(2), due=d(5, 17)))
        await publish(nc, resolved(a, f"L{i}", d(4 if i < 5 else 9)))  # L5, L6 late
    await eventually(lambda: stored(clickhouse, a) == 14)
    base = {"from": "2026-03-01", "to": "2026-03-31", "agency": a}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        figure = (await http.get("/v1/metrics/late_rate", params=base)).json()["groups"][0]
        late = (await http.get("/v1/metrics/late_rate/items", params=base)).json()
        page1 = (
            await http.get(
                "/v1/metrics/late_rate/items",
                params={**base, "part": "denominator", "page_size": 4},
            )
        ).json()
        page2 = (
            await http.get(
                "/v1/metrics/late_rate/items",
                params={**base, "part": "denominator", "page_size": 4, "page": 2},
            )
        ).json()
        exported = await http.get(
            "/v1/metrics/late_rate/items", params={**base, "part": "denominator", "format": "csv"}
        )
    # late: L5, L6 (resolved 3/9 after due 3/5) → 2 of 7
    assert (figure["numerator"], figure["denominator"]) == (2, 7)
    assert late["total"] == 2
    assert [i["dossier_id"] for i in late["items"]] == ["L5", "L6"]
    assert all(i["timeliness"] == "late" for i in late["items"])
    assert page1["total"] == page2["total"] == 7
    ids = [i["dossier_id"] for i in page1["items"] + page2["items"]]
    assert ids == [f"L{i}" for i in range(7)]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["dossier_id"] for r in rows] == ids


async def _receive_many(nc: NatsClient, clickhouse: Client, a: str, count: int) -> list[str]:
    """`count` dossiers received in March 2026, still open; their ids in the list's order."""
    ids = [f"R{i:04d}" for i in range(count)]
    for dossier in ids:
        await publish(nc, received(a, dossier, d(2), due=d(25, 17)))
    await eventually(lambda: stored(clickhouse, a) == count, timeout=60)
    return ids


def _csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_csv_holds_every_item_beyond_a_page(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches (issue 15, item 9): the CSV export holding the first page (100 of 205 rows) with
    # nothing in the file saying so; paging parameters silently ignored by the CSV.
    a = agency
    ids = await _receive_many(nc, clickhouse, a, 205)
    base = {"from": "2026-03-01", "to": "2026-03-31", "agency": a, "part": "denominator"}
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=60
    ) as http:
        first = (await http.get("/v1/metrics/online_share/items", params=base)).json()
        exported = await http.get(
            "/v1/metrics/online_share/items", params={**base, "format": "csv"}
        )
        paged_csv = await http.get(
            "/v1/metrics/online_share/items", params={**base, "format": "csv", "page": 2}
        )
    assert (first["total"], first["page_size"], len(first["items"])) == (205, 100, 100)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    heading, *rows = _csv_rows(exported.content)
    assert heading[:2] == ["agency_code", "dossier_id"]
    assert [r[1] for r in rows] == ids  # all 205, in the JSON's order, no note line
    assert [r[1] for r in rows[:100]] == [i["dossier_id"] for i in first["items"]]
    assert len(heading) == len(first["items"][0]) and all(len(r) == len(heading) for r in rows)
    assert paged_csv.status_code == 422 and "page" in paged_csv.json()["detail"]


async def test_open_items_are_within_or_overdue_as_in_ii06a(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches (issue 15, item 10): an open dossier shown as `early` and an overdue open one as
    # `late` in the drill-down, which only a finished dossier can be; and open items judged
    # otherwise than Biểu II.06a judges them at the same instant.
    a = agency
    await publish(nc, received(a, "DONE", d(2), due=d(20, 17)))
    await publish(nc, resolved(a, "DONE", d(5)))  # finished early
    await publish(nc, received(a, "OVERDUE", d(3), due=d(10, 17)))  # open past its due date
    await publish(nc, received(a, "WITHIN", d(20), due=d(15, 17, month=4)))  # open, due in April
    await eventually(lambda: stored(clickhouse, a) == 4)
    base = {"from": "2026-03-01", "to": "2026-03-31", "agency": a, "part": "denominator"}
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=60
    ) as http:
        items = (await http.get("/v1/metrics/online_share/items", params=base)).json()
        exported = await http.get(
            "/v1/metrics/online_share/items", params={**base, "format": "csv"}
        )
        report = (
            await http.get(
                "/v1/reports/ii06a", params={"from": "2026-03-01", "to": "2026-03-31", "agency": a}
            )
        ).json()
        schema = (await http.get("/openapi.json")).json()
    judged = {i["dossier_id"]: (i["timeliness"], i["timeliness_label"]) for i in items["items"]}
    assert judged == {
        "DONE": ("early", "Đã giải quyết - Trước hạn"),
        "OVERDUE": ("overdue", "Đang giải quyết - Quá hạn"),
        "WITHIN": ("within", "Đang giải quyết - Trong hạn"),
    }
    heading, *rows = _csv_rows(exported.content)
    column = heading.index("timeliness")
    assert heading[column + 1] == "timeliness_label"
    assert {r[1]: (r[column], r[column + 1]) for r in rows} == judged
    (mine,) = [r for r in report["rows"] if r["agency_code"] == a]
    assert (mine["pending_within"], mine["pending_overdue"]) == (1, 1)
    # The value set is in the OpenAPI document, for clients generated from it.
    values = schema["components"]["schemas"]["DossierItem"]["properties"]["timeliness"]
    assert {"early", "on_time", "late", "within", "overdue"} == set(values["anyOf"][0]["enum"])


class ChunkGate:
    """The test's hand on the real client: the drill-down's chunk queries past the first
    `allowed` wait until the test opens the gate; records how many ran and the request-gone
    flag each ran under."""

    def __init__(self) -> None:
        self.allowed = 10**6
        self.open = threading.Event()
        self.chunks = 0
        self.flags: list[threading.Event | None] = []
        self._lock = threading.Lock()

    def wrap(self, client: Client) -> Client:
        real = client.query

        def query(sql: str, *args: Any, **kwargs: Any) -> Any:
            if "HAVING net > 0" in sql:  # one chunk of items (MetricQuery._item_rows)
                with self._lock:
                    self.chunks += 1
                    self.flags.append(pool_module._gone.get())
                    held = self.chunks > self.allowed
                if held:
                    assert self.open.wait(60), "the test never opened the gate"
            return real(sql, *args, **kwargs)

        client.query = query  # type: ignore[method-assign]
        return client


@pytest.fixture
def gated(clickhouse_url: str) -> Iterator[tuple[ChunkGate, Client]]:
    gate = ChunkGate()
    client = pooled(lambda: gate.wrap(connect(clickhouse_url)), 3)
    try:
        yield gate, client
    finally:
        gate.open.set()
        client.close()


async def test_csv_streams_in_chunks_stops_for_a_gone_client_and_says_when_cut(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str, gated: tuple[ChunkGate, Client]
) -> None:
    # Catches: a CSV read whole into memory, or in chunks that repeat or skip items at their
    # seams; reads that go on after the client has gone (the request holds its admission slot
    # and the engine for nobody); a file cut at the row limit with nothing saying so.
    # `system` ingests the events; the API under test is one of the test's own, on the gated pool.
    gate, client = gated
    ids = await _receive_many(nc, clickhouse, agency, 64)
    url = "/v1/metrics/online_share/items"
    params = {"from": "2026-03-01", "to": "2026-03-31", "agency": agency, "format": "csv"}
    admission = Admission()
    plans = load_plans()
    async with (
        _api(client, plans, admission=admission, export_chunk_rows=10) as base,
        httpx.AsyncClient(base_url=base, headers=TEST_ADMIN_HEADERS, timeout=60) as http,
    ):
        whole = await http.get(url, params=params)
        _, *rows = _csv_rows(whole.content)
        assert [r[1] for r in rows] == ids
        assert gate.chunks == 7  # 6 full chunks of 10, the 7th with 4

        gate.chunks, gate.flags, gate.allowed = 0, [], 1
        async with http.stream("GET", url, params=params) as response:
            lines = response.aiter_lines()
            got = [await anext(lines) for _ in range(11)]  # the heading and the first chunk
        assert [line.split(",")[1] for line in got[1:]] == ids[:10]
        flag = gate.flags[0]
        assert flag is not None  # the chunks run under the request's flag
        await eventually(flag.is_set)  # the server has seen the client go
        # The second chunk may have started before that (it then waits at the gate, and is
        # let through now); none may start after it.
        gate.open.set()
        await eventually(lambda: not admission.running)  # the slot is free again
        assert gate.chunks <= 2, f"{gate.chunks} of 7 chunks were read for nobody"

    async with (
        _api(client, plans, export_chunk_rows=10, export_max_rows=25) as base,
        httpx.AsyncClient(base_url=base, headers=TEST_ADMIN_HEADERS, timeout=60) as http,
    ):
        cut = await http.get(url, params=params)
    _, *rows = _csv_rows(cut.content)
    *kept, note = rows
    assert [r[1] for r in kept] == ids[:25]
    assert note[0].startswith("# Tệp đã bị cắt: chỉ có 25 dòng đầu tiên")
