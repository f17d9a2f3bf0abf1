"""The public pages' server-side cache (services/api/page/cache.py): a burst of citizens costs
one build per page and period, never one per request; figures stay at most `seconds` behind."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.plans import load_plans
from services.api.cache import PageCache
from tests.helpers import VN, eventually, publish, received
from tests.test_targets_year import _api


def test_a_page_is_built_once_per_period_and_the_oldest_goes_first() -> None:
    # Catches: a cache that never expires, one that grows with every unknown code asked for,
    # and concurrent requests each building the same page.
    cache = PageCache(30, max_pages=2)
    built: list[str] = []

    def build(name: str) -> Any:
        def make() -> tuple[int, str]:
            built.append(name)
            time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
            return 200, f"<p>{name} {len(built)}</p>"

        return make

    threads = [threading.Thread(target=cache.get, args=("a", 0.0, build("a"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == ["a"]
    assert cache.get("a", 30.0, build("a")).body == "<p>a 1</p>"  # aged from the build's end
    assert cache.get("a", 30.1, build("a")).body == "<p>a 2</p>"  # 30 s old: built again
    cache.get("b", 31.0, build("b"))
    cache.get("c", 32.0, build("c"))  # a third page: the least recently used (a) goes
    cache.get("a", 33.0, build("a"))
    assert built == ["a", "a", "b", "c", "a"]
    off = PageCache(0)  # MOTCUA_API_PAGE_CACHE_SECONDS=0: every request builds
    off.get("x", 0.0, build("x"))
    off.get("x", 0.0, build("x"))
    assert off.builds == 2 and built[-2:] == ["x", "x"]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_scorecard_is_served_from_memory_until_it_is_due(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a page rebuilt for every request (a burst of citizens starves the ingest of CPU),
    # new figures never reaching the page, and an error page or one agency's page served for
    # another.
    clock = [datetime(2026, 11, 29, 9, tzinfo=UTC)]
    cache = PageCache(30)
    a = agency
    async with (
        _api(clickhouse, load_plans(), clock=lambda: clock[0], page_cache=cache) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        before = await http.get(f"/co-quan/{a}")
        assert before.status_code == 404  # no such agency yet: no page built, none cached
        assert cache.builds == 0

        async def stored(n: int) -> bool:
            rows = clickhouse.query(
                "SELECT count() FROM dossier_parts WHERE agency_code = {a:String}",
                parameters={"a": a},
            ).result_rows
            return int(rows[0][0]) == n

        at = datetime(2026, 3, 2, 9, tzinfo=VN)
        await publish(nc, received(a, "PC1", at, due=at + timedelta(days=3)))
        await eventually(lambda: stored(1))
        first = await http.get(f"/co-quan/{a}")
        assert first.status_code == 200 and "1/1 hồ sơ tiếp nhận" in first.text
        assert first.headers["cache-control"] == "public, max-age=60"

        await publish(nc, received(a, "PC2", at, due=at + timedelta(days=3)))
        await eventually(lambda: stored(2))
        still = await http.get(f"/co-quan/{a}")
        assert (still.status_code, still.text) == (200, first.text)  # within 30 s: as built

        clock[0] += timedelta(seconds=30)
        after = await http.get(f"/co-quan/{a}")
        assert after.status_code == 200 and "2/2 hồ sơ tiếp nhận" in after.text

        builds = cache.builds
        burst = await asyncio.gather(*(http.get("/") for _ in range(12)))
        assert {r.status_code for r in burst} == {200}
        assert len({r.text for r in burst}) == 1
        assert cache.builds == builds + 1
        other = await http.get("/", params={"nam": "2025"})
        assert other.status_code == 200 and other.text != burst[0].text
        assert cache.builds == builds + 2


def test_a_stale_page_is_served_while_it_is_rebuilt() -> None:
    # Catches: every visitor waiting for a rebuild that takes longer than the page's period
    # under load (issue 14: all requests of a burst timed out behind builds).
    cache = PageCache(30)
    cache.get("p", 0.0, lambda: (200, "old"))
    release = threading.Event()

    def slow() -> tuple[int, str]:
        release.wait(10)
        return 200, "new"

    rebuild = threading.Thread(target=cache.get, args=("p", 40.0, slow))
    rebuild.start()
    try:
        for _ in range(200):  # until the rebuild has claimed the page
            if "p" in cache._building:
                break
            time.sleep(0.01)
        assert cache.get("p", 40.0, slow).body == "old"  # at once, not after the rebuild
    finally:
        release.set()
        rebuild.join()
    assert cache.get("p", 41.0, slow).body == "new"


@pytest.mark.asyncio(loop_scope="session")
async def test_made_up_years_and_codes_cost_no_build_and_health_never_waits(
    clickhouse: Client, agency: str
) -> None:
    # Catches (issue 14, finding 3): a year spelled another way (02026, full-width digits) or a
    # made-up agency code each building a whole page (7-13 s and 2-3 s apiece), and /healthz
    # waiting for a worker thread behind page builds.
    import anyio

    cache = PageCache(30)
    async with (
        _api(clickhouse, load_plans(), page_cache=cache) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        for nam in ("02026", "002026", "２０２６", "1999", "20261"):
            for path in ("/", "/co-quan/STNMT"):
                r = await http.get(path, params={"nam": nam})
                assert r.status_code == 404 and "Không có số liệu cho năm" in r.text, nam
        for code in ("ZZ1", "ZZ2", agency):  # never seen: not in the reference data, no events
            assert (await http.get(f"/co-quan/{code}")).status_code == 404
        assert cache.builds == 0

        # every worker thread busy (a burst of page builds): health still answers
        limiter = anyio.to_thread.current_default_thread_limiter()
        busy = threading.Event()
        blockers = [
            asyncio.create_task(anyio.to_thread.run_sync(busy.wait, 30))
            for _ in range(int(limiter.total_tokens))
        ]
        try:
            await eventually(lambda: limiter.borrowed_tokens == limiter.total_tokens)
            health = await http.get("/healthz")
            assert health.status_code == 200
            assert not any(b.done() for b in blockers)  # answered while all were held
        finally:
            busy.set()
            await asyncio.gather(*blockers)


def test_a_failed_rebuild_does_not_freeze_the_old_page() -> None:
    # Catches: a build that raised (a query stopped past MOTCUA_API_QUERY_SECONDS) leaving the
    # page marked as being rebuilt, so that every later visitor got the old copy, forever.
    cache = PageCache(30)
    cache.get("p", 0.0, lambda: (200, "old"))

    def failing() -> tuple[int, str]:
        raise RuntimeError("query stopped")

    with pytest.raises(RuntimeError):
        cache.get("p", 40.0, failing)
    assert cache.get("p", 41.0, lambda: (200, "new")).body == "new"
