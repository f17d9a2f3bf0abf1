"""The open data (GET /v1/open/…): the public page's figures as JSON and CSV without a key,
followed from the page by a real headless chromium as an anonymous visitor, served from the same
reading of the store as the page, bounded per client address; item-level data stays keyed."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.plans import load_plans
from services.api.admission import AddressRate, Admission
from services.api.cache import PageCache
from tests.cdp import Browser
from tests.helpers import TEST_ADMIN_HEADERS, VN
from tests.test_page import METRICS, agency_row, seed, total_row, vn_percent
from tests.test_targets_year import _api

on_session_loop = pytest.mark.asyncio(loop_scope="session")
# Item-level routes: what the public must not reach without a key.
KEYED = (
    "/v1/metrics",
    "/v1/metrics/on_time_rate?group_by=agency",
    "/v1/metrics/on_time_rate/items",
    "/v1/index766?group_by=agency",
    "/v1/targets",
    "/v1/pipeline",
    "/v1/dossiers/D1/events",
    "/v1/dead-letters",
)
TABLES = ("figures", "monthly", "index766", "targets")


def vn_points(value: float | None) -> str:
    """Written independently of services/api/page/format.py: two decimals, decimal comma."""
    return "—" if value is None else f"{value:.2f}".replace(".", ",")


def follow_every_link(chromium: str, base: str, a: str) -> dict[str, Any]:
    """Blocking: the browser opens the page and the agency's page, follows every link to the
    API on them, and tries the keyed routes, all without a key."""
    with Browser(chromium) as browser:
        pages = [browser.visit(f"{base}/"), browser.visit(f"{base}/co-quan/{a}")]
        links: set[str] = set()
        for page in pages:
            browser.visit(page.url)
            links |= {h for h in browser.links("a") if urlsplit(h).path.startswith("/v1/")}
        visits = {link: browser.visit(link) for link in sorted(links)}
        keyed = {path: browser.visit(f"{base}{path}") for path in KEYED}
    return {"pages": pages, "visits": visits, "keyed": keyed}


@on_session_loop
async def test_every_open_data_link_works_for_an_anonymous_visitor(
    chromium: str, system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # `chromium` first: without a browser the test skips before the system starts.
    # Catches (issue 15, item 5): the page's "Dữ liệu mở" links answering 401 to the public (they
    # pointed at keyed routes), a CSV link a browser cannot download, an open table without its
    # definitions or provenance, and item-level data reachable without a key.
    a = agency
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=60
    ) as http:
        await seed(nc, clickhouse, http, a)
    seen = await asyncio.to_thread(follow_every_link, chromium, system.api_url, a)
    assert [p.status for p in seen["pages"]] == [200, 200]
    visits = seen["visits"]
    for table in TABLES:  # every table, both formats, linked from the page
        for kind in ("json", "csv"):
            assert any(f"/v1/open/{table}?" in u and f"format={kind}" in u for u in visits), (
                table,
                kind,
            )
    for url, visit in visits.items():
        assert visit.status == 200, (url, visit.status, visit.body[:200])
        if "format=csv" in url:
            assert visit.mime_type == "text/csv"
            assert visit.body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Vietnamese
            assert len(list(csv.reader(io.StringIO(visit.body.decode("utf-8-sig"))))) >= 2
        else:
            assert visit.mime_type == "application/json"
            body = json.loads(visit.body)
            if "rows" in body:
                assert body["definitions"] and body["provenance"]["rule_set"]
                assert body["provenance"]["watermark"] and body["provenance"]["computed_at"]
    figures = next(
        json.loads(v.body) for u, v in visits.items() if "/figures?" in u and "json" in u
    )
    (mine,) = [r for r in figures["rows"] if r["agency_code"] == a]
    shown = {m: (c["numerator"], c["denominator"]) for m, c in mine["figures"].items()}
    # the seed's hand-computed figures (tests/test_page.py)
    assert shown == {
        "on_time_rate": (2, 3),
        "online_share": (3, 4),
        "online_payment_share": (1, 2),
        "feedback_answered_on_time": (4, 5),
    }
    for path, visit in seen["keyed"].items():
        assert visit.status == 401, (path, visit.status)


@on_session_loop
async def test_the_page_and_the_open_data_are_one_reading_and_agree(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: open data computed apart from the page (they could disagree, and a flood of
    # anonymous requests would cost a computation each), a CSV that differs from its JSON, and
    # a table missing a unit or a month the page shows.
    a = agency
    clock = datetime(2026, 3, 31, 10, tzinfo=VN).astimezone(UTC)
    cache = PageCache(30)
    async with (
        _api(clickhouse, load_plans(), clock=lambda: clock, page_cache=cache) as base,
        httpx.AsyncClient(base_url=base, headers=TEST_ADMIN_HEADERS, timeout=60) as keyed,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        await seed(nc, clickhouse, keyed, a)
        builds = cache.builds
        page = await http.get("/")
        answers = {
            (t, f): await http.get(f"/v1/open/{t}", params={"format": f})
            for t in TABLES
            for f in ("json", "csv")
        }
        again = await asyncio.gather(*(http.get("/v1/open/figures") for _ in range(8)))
        assert cache.builds == builds + 1  # the page, 8 answers and a burst: one reading
    assert page.status_code == 200
    for (table, kind), r in answers.items():
        assert r.status_code == 200, (table, kind, r.text)
        assert r.headers["cache-control"] == "public, max-age=60"
    assert {r.content for r in again} == {answers[("figures", "json")].content}

    html = page.text
    figures = answers[("figures", "json")].json()
    rows = {r["agency_code"]: r for r in figures["rows"]}

    def cells(row: dict[str, Any]) -> list[str]:
        shown = [row["figures"][m] for m in METRICS]
        rates = [c["numerator"] / c["denominator"] if c["denominator"] else None for c in shown]
        return [*map(vn_percent, rates), vn_points(row["index766_points"])]

    assert total_row(html) == cells(rows[None])
    page_codes = re.findall(r'<tr data-agency="([^"]+)">', html)
    assert page_codes == [r["agency_code"] for r in figures["rows"][1:]]  # same units, order
    for code in page_codes:
        assert agency_row(html, code) == cells(rows[code]), code

    sheet = list(csv.reader(io.StringIO(answers[("figures", "csv")].content.decode("utf-8-sig"))))
    (line,) = [r for r in sheet if r[0] == a]
    mine = rows[a]["figures"]
    assert [int(x) for x in line[4:6]] == [
        mine["on_time_rate"]["numerator"],
        mine["on_time_rate"]["denominator"],
    ]
    assert float(line[6]) == mine["on_time_rate"]["percent"] == 66.67

    monthly = answers[("monthly", "json")].json()
    assert [r["month"] for r in monthly["rows"]] == ["2026-01", "2026-02", "2026-03"]
    index = answers[("index766", "json")].json()
    assert {r["agency_code"] for r in index["rows"]} >= {None, a}
    targets = answers[("targets", "json")].json()
    assert targets["rows"] and all("statuses" in t for t in targets["rows"])


@on_session_loop
async def test_bad_parameters_floods_and_keys(clickhouse: Client, agency: str) -> None:
    # Catches: a bad year or format answered with a 500 or a build (each a new cache entry), an
    # anonymous flood without a bound, keyed callers throttled by their address, and open routes
    # documented as needing a key.
    clock = datetime(2026, 3, 31, 10, tzinfo=VN).astimezone(UTC)
    cache = PageCache(30)
    admission = Admission(open_data=AddressRate(per_second=0.001, burst=4))
    async with (
        _api(
            clickhouse, load_plans(), clock=lambda: clock, page_cache=cache, admission=admission
        ) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        refused = [
            await http.get("/v1/open/figures", params=params)
            for params in ({"year": "abc"}, {"year": "1999"}, {"format": "xml"})
        ]
        future = await http.get("/v1/open/figures", params={"year": "2027"})  # not begun
        assert [r.status_code for r in [*refused, future]] == [422] * 4
        assert "2027" in future.json()["detail"]
        assert cache.builds == 0
        flood = await http.get("/v1/open")  # the 5th request from this address
        assert flood.status_code == 429
        assert int(flood.headers["retry-after"]) >= 1
        assert "Quá nhiều yêu cầu" in flood.json()["detail"]
        with_key = await http.get("/v1/open", headers=TEST_ADMIN_HEADERS)
        assert with_key.status_code == 200  # counted per key by the admission, not by address
        schema = (await http.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/open/figures"]["get"]
    assert "security" not in operation
    assert "text/csv" in operation["responses"]["200"]["content"]
    assert "security" in schema["paths"]["/v1/metrics/{metric}/items"]["get"]


@pytest.mark.pure
def test_an_address_gets_its_burst_then_its_rate_and_the_memory_is_bounded() -> None:
    # Catches: a bucket that never refills, one that refills past its burst, a Retry-After of 0,
    # and a table of addresses that grows with every address ever seen.
    now = [0.0]
    rate = AddressRate(per_second=0.5, burst=3, max_addresses=2, clock=lambda: now[0])
    assert [rate.admit("a") for _ in range(4)] == [0, 0, 0, 2]
    assert rate.admit("b") == 0  # another address: its own bucket
    now[0] += 2.0  # one request's worth
    assert [rate.admit("a"), rate.admit("a")] == [0, 2]
    now[0] += 1000.0
    assert [rate.admit("a") for _ in range(4)] == [0, 0, 0, 2]  # refilled to the burst only
    rate.admit("c")
    assert len(rate._buckets) == 2  # "b" forgotten, the least recently seen
    assert rate.refused == 3


def test_the_open_data_bound_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # Catches a bound only code can change: an office behind one NAT address needs a larger one.
    from motcua.settings import Settings

    monkeypatch.setenv("MOTCUA_API_OPEN_DATA_BURST", "500")
    monkeypatch.setenv("MOTCUA_API_OPEN_DATA_PER_SECOND", "5")
    bound = Settings().api_admission().open_data
    assert (bound.burst, bound.per_second) == (500, 5.0)
    monkeypatch.delenv("MOTCUA_API_OPEN_DATA_BURST")
    monkeypatch.delenv("MOTCUA_API_OPEN_DATA_PER_SECOND")
    default = Settings().api_admission().open_data
    assert (default.burst, default.per_second) == (AddressRate().burst, AddressRate().per_second)
