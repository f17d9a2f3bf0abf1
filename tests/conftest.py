"""Shared fixtures: a real nats-server on a free port and one chDB engine for the session.

chDB opens one data directory per process, so every in-process test shares the session's store
and isolates itself by unique agency codes; tests that need a store of their own run `motcua`
in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.messaging.nats_server import EmbeddedNats, free_port
from core.messaging.streams import ensure_streams
from core.reference.calendar import WorkingCalendar
from core.reference.calendar_store import sync_calendar
from core.storage.clickhouse import connect
from core.storage.migrate import migrate
from core.storage.pool import pooled


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("motcua")


@pytest.fixture(scope="session")
def clickhouse_url(session_dir: Path) -> str:
    return f"chdb://{session_dir / 'clickhouse'}"


@pytest.fixture(scope="session")
def clickhouse(clickhouse_url: str) -> Client:
    client = connect(clickhouse_url)
    migrate(client)
    sync_calendar(client, WorkingCalendar.load())
    return client


@pytest.fixture(scope="session")
def readers(clickhouse_url: str, clickhouse: Client) -> Iterator[Client]:
    """Clients side by side on the session's store, as the API's pool (services/api/main.py):
    a test that asks many questions at once (core/storage/pool.run_all) uses both cores."""
    pool = pooled(lambda: connect(clickhouse_url), 3)
    yield pool
    pool.close()


@pytest_asyncio.fixture(scope="session")
async def nats_server(session_dir: Path) -> AsyncIterator[EmbeddedNats]:
    server = EmbeddedNats(session_dir / "nats", port=free_port())
    await server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.url)
    await ensure_streams(client.jetstream())
    yield client
    await client.drain()


@pytest_asyncio.fixture(loop_scope="session")
async def own_nats(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNats, NatsClient]]:
    """A nats-server of the test's own, streams declared, and a client: for `motcua`
    subprocesses whose durable consumer must not share the session's stream."""
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    await server.start()
    client = await nats.connect(server.url)
    await ensure_streams(client.jetstream())
    yield server, client
    await client.close()
    server.stop()


@pytest.fixture
def agency() -> str:
    """A unique agency code per test, so tests sharing the session store never see each other."""
    return f"T{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Lanes by fixture: a test that uses the engine or the server is marked for it.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"clickhouse", "system"}:
            item.add_marker(pytest.mark.clickhouse)
        if names & {"nats_server", "nc", "system", "own_nats"}:
            item.add_marker(pytest.mark.nats)


@pytest.fixture
def tmp_data(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


@pytest_asyncio.fixture(scope="session")
async def system(
    nats_server: EmbeddedNats,
    nc: NatsClient,
    clickhouse: Client,
    clickhouse_url: str,
    session_dir: Path,
) -> AsyncIterator[Any]:
    """The whole embedded system (ingest, metrics, API over real HTTP) on the session's
    nats-server and chDB store."""
    from motcua.embedded import embedded
    from motcua.settings import Settings
    from tests.helpers import TEST_ADMIN_KEY

    settings = Settings(
        nats_url=nats_server.url,
        clickhouse_url=clickhouse_url,
        data_dir=session_dir / "data",
        api_port=free_port(),
        # Tests drive MetricsService and PlanMonitor with their own clocks; the background loop
        # runs once at start-up (it is the runtime's wiring under test) and then stays out of the
        # way: recomputing every figure of the shared store each second would slow every test.
        metrics_interval=3600.0,
        metrics_plans_interval=3600.0,
        ingest_flush_interval=0.05,
        # Tests publish and then read the public pages at once; the page cache has its own test
        # (tests/test_page_cache.py).
        api_page_cache_seconds=0,
        # The session's admin API key (running.api_headers), whatever tests stored keys first.
        bootstrap_admin_key=TEST_ADMIN_KEY,
    )
    async with embedded(settings) as running:
        # `motcua up` seeds only an empty store, and tests that insert rows of their own may run
        # first; publish the seed anyway (its events have fixed ids: a repeat is dropped).
        from core.ingestion.reference_loader import publish_events, read_catalog_file
        from core.reference.seed import SEED_FILE

        await publish_events(nc.jetstream(), read_catalog_file(SEED_FILE))
        yield running


# --- The browser (tests/test_page.py and every test that renders a page) ------------------------
# A missing chromium skips those tests with a reason that says so, listed at the end of the run
# (pytest -q shows only a count of skips); with MOTCUA_REQUIRE_BROWSER=1 (.ci/run) it fails them,
# so CI never passes without having run a browser.

REQUIRE_BROWSER = "MOTCUA_REQUIRE_BROWSER"
NO_BROWSER = (
    "chromium not found on PATH: the browser tests did not run. Install it "
    "(Debian/Ubuntu: apt-get install chromium; elsewhere: Chromium or Chrome as `chromium`)"
)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser's executable (chromium, or chromium-browser on older Ubuntus)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{NO_BROWSER}; {REQUIRE_BROWSER}=1 requires it", pytrace=False)
    pytest.skip(NO_BROWSER)


def _browser_skips(terminalreporter: Any) -> list[str]:
    skipped = terminalreporter.stats.get("skipped", [])
    return [r.nodeid for r in skipped if NO_BROWSER in str(getattr(r, "longrepr", ""))]


# --- Fault suite figures (tests/test_faults.py) -------------------------------------------------
# Its figures lines go into the terminal summary: pytest captures print() while a test runs.


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.fault_figures import LINES

    browser_skips = _browser_skips(terminalreporter)
    if browser_skips:
        terminalreporter.section("browser tests skipped", yellow=True)
        terminalreporter.write_line(NO_BROWSER)
        for nodeid in browser_skips:
            terminalreporter.write_line(f"  {nodeid}")
    if LINES:
        terminalreporter.section("fault injection figures")
        for line in LINES:
            terminalreporter.write_line(line)
