"""From any figure to the list of items behind it."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from tests.helpers import eventually, publish, received, resolved
from tests.test_pipeline import d, stored

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
            "/v1/metrics/late_rate/items",
            params={**base, "part": "denominator", "page_size": 100, "format": "csv"},
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
