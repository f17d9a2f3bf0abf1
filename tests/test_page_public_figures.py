"""What the public page shows (issue 15, items 6 and 7): no figure counts an undecided item as a
failure, a year without data has no 766 score, the 766 points read alike, and the page's notes
point at something on it. Over real HTTP against the real store."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from core.plans import load_plans
from core.plans.status import STATUS_COLUMNS
from services.api.page import format as fmt
from services.api.page.figures import Count, decided_feedback
from services.api.page.targets import Status
from services.api.page.targets_view import decided_value
from services.api.page.view import IndexView
from tests.helpers import TEST_ADMIN_HEADERS, VN, eventually, feedback_event, filed, publish
from tests.test_page import card
from tests.test_targets_year import _api

on_session_loop = pytest.mark.asyncio(loop_scope="session")
# 10 March 2026: the answer deadline (15 working days) of what was filed on 2 March is to come.
CLOCK = datetime(2026, 3, 10, 10, tzinfo=VN).astimezone(UTC)


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 9, tzinfo=VN)


async def publish_feedback(nc: NatsClient, clickhouse: Client, a: str) -> None:
    """January: answered on time, answered late, never answered (overdue by March). March: one
    answered on time, four still within their deadline on 10 March."""
    events = [
        filed(a, "F1", at(1, 5), due=at(1, 26)),
        feedback_event("answered", a, "F1", at(1, 8)),
        filed(a, "F2", at(1, 5), due=at(1, 26)),
        feedback_event("answered", a, "F2", at(2, 10)),
        filed(a, "F3", at(1, 6), due=at(1, 27)),
        filed(a, "F8", at(3, 2), due=at(3, 23)),
        feedback_event("answered", a, "F8", at(3, 4)),
        *(filed(a, f"F{i}", at(3, 2), due=at(3, 23)) for i in range(4, 8)),
    ]
    for event in events:
        await publish(nc, event)

    def stored() -> bool:
        rows = clickhouse.query(
            "SELECT count() FROM feedback_parts WHERE agency_code = {a:String}",
            parameters={"a": a},
        ).result_rows
        return int(rows[0][0]) >= 1 and _facts(clickhouse, a) == 8

    await eventually(stored)


def _facts(clickhouse: Client, a: str) -> int:
    rows = clickhouse.query(
        "SELECT uniqExact(feedback_id) FROM feedback_parts WHERE agency_code = {a:String} "
        "AND filed_at IS NOT NULL",
        parameters={"a": a},
    ).result_rows
    return int(rows[0][0])


def month_cells(html: str, label: str) -> list[str]:
    row = re.search(rf'<tr><th scope="row">{re.escape(label)}</th>(.*?)</tr>', html, re.S)
    assert row, f"no month {label}"
    return re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))


def _status_row(a: str) -> list[Any]:
    """2022's feedback target for `a`, evaluated with all 218 items still within deadline (the
    status written by core/plans/status.py: value 0, status on track)."""
    evaluated = datetime(2022, 12, 20, tzinfo=UTC)
    values = {
        "evaluated_at": evaluated,
        "plan": "kh-7860-2022@1",
        "target_id": "A.IV.7-feedback-answered",
        "agency_code": a,
        "period_start": date(2022, 1, 1),
        "period_end": date(2022, 12, 31),
        "metric": "feedback_answered_on_time",
        "comparator": ">=",
        "threshold": 1.0,
        "numerator": 0,
        "denominator": 218,
        "pending": 218,
        "value": 0.0,
        "status": "on_track",
        "needed": 0,
        "remaining_working_days": 0,
        "burn_rates": {},
        "data_watermark": evaluated,
    }
    return [values.get(c, "" if c == "forecast_method" else None) for c in STATUS_COLUMNS]


@on_session_loop
async def test_feedback_within_its_deadline_is_neither_success_nor_failure(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches (issue 15, item 6): December's feedback at 0,0% (0 of 218, all within their
    # deadline) dragging the year down, the same fault in a plan target's value, and a page that
    # does not say how its feedback figure is counted.
    a = agency
    await publish_feedback(nc, clickhouse, a)
    clickhouse.insert("target_status", [_status_row(a)], column_names=list(STATUS_COLUMNS))
    async with (
        _api(clickhouse, load_plans(), clock=lambda: CLOCK) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        api = await http.get(
            "/v1/metrics/feedback_answered_on_time",
            params={"agency": a},
            headers=TEST_ADMIN_HEADERS,
        )
        mine = await http.get(f"/co-quan/{a}")
        province = await http.get("/")
        open_rows = (await http.get("/v1/open/figures")).json()["rows"]
        old_year = await http.get(f"/co-quan/{a}", params={"nam": "2022"})
    (group,) = api.json()["groups"]
    assert (group["numerator"], group["denominator"]) == (2, 8)  # the API divides by all filed
    assert group["undecided"] == 4  # F4-F7, within their deadline
    # The plans' forecast reads the same items per day as still to come: with a NULL answer
    # time the condition was NULL and they counted as nothing (0 pending, not 4).
    daily = metric_query(
        "feedback_answered_on_time",
        period=Period.from_dates(date(2026, 1, 1), date(2026, 12, 31)),
        now=CLOCK,
        filters=Filters(agencies=(a,)),
    ).daily_by_agency(clickhouse)
    assert sum(d.pending for d in daily) == 4
    rate, counts = card(mine.text, "feedback_answered_on_time")
    # on time: F1, F8; decided: those and F2 (late), F3 (overdue); F4-F7 not decided
    assert rate == "50,00%"
    assert counts == "2/4 PAKN đã trả lời hoặc đã quá hạn; 4 PAKN còn trong hạn, chưa tính"
    assert "Không tính PAKN chưa trả lời còn trong thời hạn" in mine.text
    assert month_cells(mine.text, "T1/2026")[3] == "33,33%"
    assert month_cells(mine.text, "T3/2026")[3] == "100,00%"  # not 1 of 5 (20,00%)
    row = re.search(rf'<tr data-agency="{a}">(.*?)</tr>', province.text, re.S)
    assert row and re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))[3] == "50,00%"
    (shown,) = [r for r in open_rows if r["agency_code"] == a]
    feedback = shown["figures"]["feedback_answered_on_time"]
    assert (feedback["numerator"], feedback["denominator"], feedback["undecided"]) == (2, 4, 4)

    # A plan target's figure: the 218 undecided items are left out, and said to be.
    assert old_year.status_code == 200
    assert "— (không tính 218 chưa đến hạn)" in old_year.text
    assert "0,00%" not in old_year.text


@on_session_loop
async def test_a_year_without_data_shows_no_766_score(
    system: Any, clickhouse: Client, agency: str
) -> None:
    # Catches (issue 15, item 7): a year with no dossier and no feedback scored by the catalogue
    # and the no-feedback rules alone (22,6/100 beside "chưa có số liệu").
    a = agency
    clickhouse.insert("target_status", [_status_row(a)], column_names=list(STATUS_COLUMNS))
    async with (
        _api(clickhouse, load_plans(), clock=lambda: CLOCK) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        page = await http.get(f"/co-quan/{a}", params={"nam": "2022"})
        index = await http.get(
            "/v1/index766",
            params={"agency": a, "from": "2022-01-01", "to": "2022-12-31"},
            headers=TEST_ADMIN_HEADERS,
        )
    (result,) = index.json()["results"]
    assert result["total_points"] > 0 and result["points_with_data"] is None  # the trap
    assert page.status_code == 200
    shown = re.search(r'data-metric="index766">([^<]*)<', page.text)
    assert shown and shown.group(1) == "—"
    assert "chưa tính điểm" in page.text
    groups = re.search(r'id="chi-so-766".*?</table>', page.text, re.S)
    assert groups
    points = re.findall(r'<th scope="row">[^<]*</th><td>([^<]*)</td>', groups.group(0))
    assert points and set(points) == {"—"}


@on_session_loop
async def test_the_scorecard_reads_consistently(system: Any, clickhouse: Client) -> None:
    # Catches (issue 15, item 7): the 766 column mixing "58,8" and "59,24", a "(*)" footnote
    # with no asterisk to point from, and "(ví dụ minh họa)" after a plan name that says so.
    async with (
        _api(clickhouse, load_plans(), clock=lambda: CLOCK) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as http,
    ):
        html = (await http.get("/")).text
    table = re.search(r'<table id="bang-co-quan">(.*?)</table>', html, re.S)
    assert table
    scores = re.findall(r"<td>([^<]*)</td></tr>", table.group(1))
    assert scores and all(re.fullmatch(r"\d{1,3}(\.\d{3})*,\d{2}|—", s) for s in scores), scores
    marked = "</a>*</th>" in table.group(1)
    assert ("* Gồm cả các đơn vị trực thuộc" in html) == marked
    assert "(*)" not in html
    headings = re.findall(r"<h3>([^<]*)</h3>", html)
    assert any("minh họa" in h.casefold() for h in headings)  # the demo plan, in force in 2026
    for heading in headings:
        assert heading.casefold().count("minh họa") <= 1, heading


@pytest.mark.pure
def test_the_arithmetic_behind_the_public_figures() -> None:
    # Catches: undecided feedback counted in the denominator, points written with a varying
    # number of decimals, a score for a scope with no data, and a target value over all items.
    # as the API answers: every item filed in the denominator, `undecided` of them still open
    # within their deadline
    counts = decided_feedback(
        {"2026-12-01": Count(0, 218, 218), "2026-11-01": Count(41, 67, 20)},
    )
    assert counts["2026-12-01"] == Count(0, 0, 218)  # nothing decided: no rate, not 0%
    assert counts["2026-12-01"].rate is None
    assert counts["2026-11-01"] == Count(41, 47, 20)
    assert Count.total(counts.values()) == Count(41, 47, 238)
    assert [fmt.points(v) for v in (58.8, 59.24, 100.0, None)] == ["58,80", "59,24", "100,00", "—"]
    empty = IndexView.of(
        {
            "total_points": 22.6,
            "points_with_data": None,
            "not_assessed_points": 60,
            "groups": [
                {"label": "Công khai", "points": 10.6, "max_points": 18, "not_assessed_points": 6}
            ],
        }
    )
    assert (empty.total, empty.groups[0].points, empty.has_data) == ("—", "—", False)
    status = Status(
        "p@1", "t", "A", date(2026, 1, 1), date(2026, 12, 31), "on_track", 0.3, 1.0, 3, 10, 5, None
    )
    assert decided_value(status) == pytest.approx(0.6)  # 3 of the 5 decided
