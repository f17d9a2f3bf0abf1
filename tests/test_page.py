"""The public scorecard page (/ and /co-quan/{code}): server-rendered Vietnamese HTML showing the
very numbers the API returns, checked over real HTTP and in a real headless browser (conftest's
`chromium` fixture: Debian's chromium, installed by .ci/run)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.ingestion.reference_loader import read_catalog_file
from core.plans.status import STATUS_COLUMNS
from core.reference.seed import SEED_FILE
from services.api.page.sparkline import sparkline
from tests.helpers import (
    HEADLESS_CHROMIUM,
    dossier_event,
    eventually,
    feedback_event,
    filed,
    publish,
    received,
)
from tests.helpers import resolved as resolved_event
from tests.test_pipeline import d, stored

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
METRICS = ("on_time_rate", "online_share", "online_payment_share", "feedback_answered_on_time")


def vn_percent(rate: float | None) -> str:
    """Written independently of services/api/page/format.py: a shared bug would hide itself."""
    return "—" if rate is None else f"{rate * 100:.2f}".replace(".", ",") + "%"


def vn_points(value: float) -> str:
    """766 points: always two decimals (issue 15: "58,8" beside "59,24")."""
    return f"{value:.2f}".replace(".", ",")


def reference_loaded(clickhouse: Client) -> bool:
    """`motcua up` publishes the Khánh Hòa seed at start and ingests it like any event: until
    all of it is stored, the org tree and the catalogue (hence the 766 index) are still moving."""
    seed = read_catalog_file(SEED_FILE)
    for table, kind in (("agencies_current", "agency"), ("procedures_current", "procedure")):
        stored_rows = clickhouse.query(
            f"SELECT count() FROM {table} WHERE source = {{s:String}}",
            parameters={"s": f"catalog-file:{SEED_FILE.name}"},
        ).result_rows[0][0]
        if stored_rows != sum(1 for e in seed if e.type == f"reference.{kind}"):
            return False
    return True


async def seed(nc: NatsClient, clickhouse: Client, http: httpx.AsyncClient, a: str) -> None:
    """March 2026, by hand: on time 2/3, online 3/4, paid online 1/2, feedback in time 4/5."""
    await eventually(lambda: reference_loaded(clickhouse), timeout=60)
    events = [
        received(a, "D1", d(2), due=d(6, 17)),
        resolved_event(a, "D1", d(4)),  # early
        received(a, "D2", d(2), due=d(3, 17), channel="direct"),
        resolved_event(a, "D2", d(5)),  # late
        received(a, "D3", d(2), due=d(5, 17)),
        resolved_event(a, "D3", d(5, 10)),  # on time (same day, before due_at)
        received(a, "D4", d(3), due=d(10, 17, month=4)),  # open
        dossier_event("paid", a, "D1", d(3), channel="online", amount_vnd=50_000),
        dossier_event("paid", a, "D2", d(3), channel="offline", amount_vnd=50_000),
    ]
    for i in range(1, 6):
        events.append(filed(a, f"F{i}", d(2), due=d(20, 17)))
        if i < 5:  # F5 is never answered: overdue by now
            events.append(feedback_event("answered", a, f"F{i}", d(5)))
    for event in events:
        await publish(nc, event)
    await eventually(lambda: stored(clickhouse, a) == 9)

    async def feedback_stored() -> bool:
        body = await api(http, "/v1/metrics/feedback_answered_on_time", agency=a)
        return bool(body["groups"]) and body["groups"][0]["denominator"] == 5

    await eventually(feedback_stored)


async def api(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def decided_feedback_rate(http: httpx.AsyncClient, **params: Any) -> float | None:
    """The page's feedback figure from three API figures: answered on time over answered or
    overdue; items still within their deadline are left out (issue 15)."""
    counts = {
        m: (await api(http, f"/v1/metrics/{m}", **params))["groups"]
        for m in ("feedback_answered_on_time", "feedback_answered_late", "feedback_open_overdue")
    }
    on_time, late, overdue = (sum(g["numerator"] for g in c) for c in counts.values())
    decided = on_time + late + overdue
    # the figure's own count of undecided items: every filed item not decided
    filed = counts["feedback_answered_on_time"]
    assert sum(g["undecided"] for g in filed) == sum(g["denominator"] for g in filed) - decided
    assert all("undecided" not in g for g in counts["feedback_answered_late"])
    return on_time / decided if decided else None


def agency_row(html: str, code: str) -> list[str]:
    row = re.search(rf'<tr data-agency="{re.escape(code)}">(.*?)</tr>', html, re.S)
    assert row, f"no row for {code}"
    return re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))


def total_row(html: str) -> list[str]:
    row = re.search(r'<tr class="total"><th scope="row">Toàn tỉnh</th>(.*?)</tr>', html, re.S)
    assert row
    return re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))


def card(html: str, metric: str) -> tuple[str, str]:
    found = re.search(
        rf'data-metric="{metric}">([^<]*)</p>\s*<p class="sub">([^<]*)</p>', html, re.S
    )
    assert found, f"no card for {metric}"
    return found.group(1), found.group(2)


async def expected_row(http: httpx.AsyncClient, a: str) -> list[str]:
    """The seeded agency's figures as GET /v1/metrics?group_by=agency and /v1/index766 say."""
    cells = []
    for metric in METRICS:
        body = await api(http, f"/v1/metrics/{metric}", group_by="agency")
        (group,) = [g for g in body["groups"] if g["group"] == a]
        cells.append(vn_percent(group["rate"]))
    index = await api(http, "/v1/index766", group_by="agency")
    (mine,) = [r for r in index["results"] if r["agency"] == a]
    return [*cells, vn_points(mine["total_points"])]


def headless(chromium: str, *args: str, url: str) -> str:
    """One headless run of the `chromium` executable with a fresh profile; what it printed."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                chromium,
                *HEADLESS_CHROMIUM,
                f"--user-data-dir={profile}",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
    return done.stdout


on_session_loop = pytest.mark.asyncio(loop_scope="session")


@on_session_loop
async def test_page_shows_the_numbers_the_api_returns(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a page computing its own figures (drifting from the API), a broken rollup or
    # province total, JavaScript needed to see a number, lost diacritics, and an agency page that
    # disagrees with GET /v1/metrics?agency=.
    a = agency
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=60
    ) as http:
        await seed(nc, clickhouse, http, a)
        started = time.perf_counter()
        page = await http.get("/")
        elapsed = time.perf_counter() - started
        expected = await expected_row(http, a)
        totals = [
            vn_percent((await api(http, f"/v1/metrics/{m}"))["groups"][0]["rate"])
            for m in METRICS[:3]
        ]
        totals.append(vn_percent(await decided_feedback_rate(http)))
        mine = await http.get(f"/co-quan/{a}")
        per_agency = {m: await api(http, f"/v1/metrics/{m}", agency=a) for m in METRICS}
        index = await api(http, "/v1/index766", agency=a)
    print(f"\nGET / {len(page.content) / 1024:.1f} KB in {elapsed:.2f} s")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    # The hand-computed figures, and the API's own answer, in the plain server HTML.
    assert expected[:4] == ["66,67%", "75,00%", "50,00%", "80,00%"]
    assert agency_row(html, a) == expected
    assert total_row(html)[:4] == totals
    assert "<script" not in html.lower()  # nothing to run: readable without JavaScript
    for words in (
        "Kết quả giải quyết thủ tục hành chính",
        "Mục tiêu kế hoạch",
        "Đúng hạn",
        "Chỉ số 766",
        "Xu hướng theo tháng",
        "Tháng",
    ):
        assert words in html
    # the open data, not the keyed API (issue 15): tests/test_open_data.py follows the links
    assert '<a href="/docs">' in html and 'href="/v1/open/figures?' in html
    assert "@media print" in html
    assert f'href="/co-quan/{a}"' in html

    assert mine.status_code == 200
    for metric in METRICS:
        (group,) = per_agency[metric]["groups"]
        rate, counts = card(mine.text, metric)
        assert rate == vn_percent(group["rate"])
        assert counts.startswith(f"{group['numerator']}/{group['denominator']} ")
    shown = re.search(r'data-metric="index766">([^<]*)<', mine.text)
    assert shown and shown.group(1) == vn_points(index["results"][0]["total_points"])
    assert "T3/2026" in mine.text  # the month the dossiers fell in, in the trend table
    assert "Chưa có đánh giá" in mine.text  # no target status for this agency yet


@on_session_loop
async def test_page_in_a_headless_browser(
    chromium: str, system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # `chromium` first: without a browser the test skips before the system starts.
    # Catches: markup a real browser cannot render to the same numbers (broken HTML, a figure
    # only in an attribute), and a layout that is unreadable on a phone (the screenshot is kept
    # for a person to look at).
    a = agency
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=60
    ) as http:
        await seed(nc, clickhouse, http, a)
        expected = await expected_row(http, a)
    dom = await asyncio.to_thread(headless, chromium, "--dump-dom", url=f"{system.api_url}/")
    assert agency_row(dom, a) == expected
    assert "Toàn tỉnh" in dom and "Điểm 766" in dom
    agency_dom = await asyncio.to_thread(
        headless, chromium, "--dump-dom", url=f"{system.api_url}/co-quan/{a}"
    )
    assert card(agency_dom, "on_time_rate") == ("66,67%", "2/3 hồ sơ đã giải quyết")

    ARTIFACTS.mkdir(exist_ok=True)
    for name, path in (("scorecard-phone.png", "/"), ("agency-phone.png", f"/co-quan/{a}")):
        shot = ARTIFACTS / name
        shot.unlink(missing_ok=True)
        await asyncio.to_thread(
            headless,
            chromium,
            f"--screenshot={shot}",
            "--window-size=390,2400",
            url=f"{system.api_url}{path}",
        )
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 20_000  # a blank page is a few KB
        print(f"\nscreenshot (390 px wide, phone): {shot}")


def _status_row(a: str, status: str, value: float, evaluated: datetime) -> list[Any]:
    return [
        evaluated,
        "kh-7860-2022@1",
        "A.IV.7-feedback-answered",
        a,
        date(2022, 1, 1),
        date(2022, 12, 31),
        "feedback_answered_on_time",
        ">=",
        1.0,
        9,
        10,
        0,
        value,
        status,
        None,
        None,
        None,
        None,
        "",
        None,
        None,
        None,
        0,
        {},
        evaluated,
    ]


@on_session_loop
async def test_targets_show_the_latest_status(system: Any, clickhouse: Client, agency: str) -> None:
    # Catches: an older evaluation shown instead of the latest, a target without its plan's
    # words or threshold, and an agency page that 404s when the agency only has statuses.
    a = agency
    columns = list(STATUS_COLUMNS)
    # What core/plans/status.py writes (migration 0012): at risk first, then missed.
    clickhouse.insert(
        "target_status",
        [
            _status_row(a, "at_risk", 0.95, datetime(2022, 11, 1, tzinfo=UTC)),
            _status_row(a, "missed", 0.9, datetime(2023, 1, 2, tzinfo=UTC)),
        ],
        column_names=columns,
    )
    async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as http:
        mine = await http.get(f"/co-quan/{a}", params={"nam": "2022"})
        province = await http.get("/", params={"nam": "2022"})
    assert mine.status_code == 200
    assert "100% phản ánh, kiến nghị được xử lý" in mine.text  # the plan's own words
    assert "Không đạt" in mine.text and "90,00%" in mine.text and "≥ 100%" in mine.text
    assert "Có nguy cơ không đạt" not in mine.text  # superseded by the later evaluation
    assert "Năm 2022" in mine.text
    assert province.status_code == 200
    assert "KH 7860/KH-UBND" in province.text
    assert f'href="/co-quan/{a}?nam=2022"' in province.text


@on_session_loop
async def test_unknown_agency_and_year_are_404_in_vietnamese(system: Any) -> None:
    # Catches: an unknown code rendered as an empty scorecard, or a bad year answered with a 500.
    async with httpx.AsyncClient(base_url=system.api_url, timeout=60) as http:
        unknown = await http.get(f"/co-quan/KHONGCO{uuid.uuid4().hex[:8].upper()}")
        bad_year = await http.get("/", params={"nam": "abc"})
        future = await http.get("/", params={"nam": str(datetime.now(UTC).year + 1)})
    for response in (unknown, bad_year, future):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "Không tìm thấy" in response.text or "Không có số liệu" in response.text
    assert "Không tìm thấy cơ quan" in unknown.text


@pytest.mark.pure
def test_sparkline_breaks_on_empty_months_and_keeps_a_minimum_axis() -> None:
    # Catches: a month without items drawn as 0% (a fake cliff), and a flat series stretched to
    # fill the box so that 0.1 points of noise look like a collapse.
    line = sparkline([None, 0.97, 0.98, None, 0.975])
    assert len(line.segments) == 1 and len(line.dots) == 1  # the lone last month is a dot
    assert line.low is not None and line.high is not None
    assert line.high - line.low == pytest.approx(0.10) and line.high <= 1.0
    assert sparkline([None, None]).segments == ()
