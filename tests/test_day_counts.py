"""The day counts (core/figures/days.py) against the facts read a dossier at a time.

A live question reads whole past days from the day counts, the rest from the facts; the same
question asked as of an instant after every insert reads only the facts (its own path through
`item_rows`), so the two must agree on every figure and on every 766 leaf count. The dossiers sit
on the edges the day counts cannot see inside a day: a judging instant in the middle of the day
a dossier is digitised, paid or finished on, events after that instant, a withdrawal."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from core.figures import index766
from core.figures.days import DAY_METRICS
from core.figures.definitions import METRICS
from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from core.figures.refolder import catch_up
from core.storage.pool import run_all
from tests.helpers import dossier_event, received, resolved
from tests.test_pipeline import d
from tests.test_replay import store

MARCH = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))
# whole March from the month counts (migration 0026), the days before it from the day counts
FROM_FEBRUARY = Period.from_dates(date(2026, 2, 15), date(2026, 3, 31))


def edge_events(agency: str) -> list[dict[str, Any]]:
    """Dossiers received on 2/3..9/3, each with one event on 10/3 (the day judged on below) at
    an hour before or after the judging instant, 10/3 12:00."""
    out: list[dict[str, Any]] = []
    for i, hour in enumerate((8, 11, 13, 16)):
        at = d(10, hour)
        rid = f"R{i}"
        out.append(received(agency, rid, d(2 + i), due=d(12, 17), channel="online", fee=True))
        out.append(dossier_event("digitized", agency, rid, at))
        out.append(dossier_event("paid", agency, rid, at, channel="online", amount_vnd=10_000))
        out.append(resolved(agency, rid, at))
    # digitised days later than received, and on the day before the judging one
    out.append(received(agency, "L1", d(3), due=d(4, 17), channel="direct"))
    out.append(dossier_event("digitized", agency, "L1", d(9, 15)))
    out.append(resolved(agency, "L1", d(9, 16)))  # late
    out.append(received(agency, "W1", d(5), due=d(20, 17)))
    out.append(dossier_event("withdrawn", agency, "W1", d(8)))
    # paid after its end, on the judged day; and in the period after ending before it
    out.append(received(agency, "P1", d(3), due=d(6, 17), fee=True))
    out.append(resolved(agency, "P1", d(5)))
    out.append(dossier_event("paid", agency, "P1", d(10, 11), channel="online", amount_vnd=5))
    out.append(received(agency, "P2", d(20, month=2), due=d(26, 17, month=2), fee=True))
    out.append(resolved(agency, "P2", d(25, month=2)))
    out.append(dossier_event("paid", agency, "P2", d(9, 13), channel="offline", amount_vnd=5))
    # still open at every judging instant, received on the judged day
    out.append(received(agency, "O1", d(10, 10), due=d(11, 17)))
    return out


def answers(
    client: Client, agency: str, now: datetime, as_of: datetime | None, period: Period = MARCH
) -> Any:
    """Every figure (whole and by day), the daily series and the 766 leaf counts, asked side by
    side when `client` is a pool (as the API asks them)."""
    filters = Filters(agencies=(agency,))
    grouped = [(m, g) for m in METRICS for g in (None, "day")]

    def figure(m: str, g: Any) -> list[Any]:
        query = metric_query(m, period=period, now=now, filters=filters, group_by=g, as_of=as_of)
        return [(r.group, r.numerator, r.denominator, r.events) for r in query.run(client)]

    def series(m: str) -> list[Any]:
        # the daily series the plan forecasts read (core/plans/status.py)
        query = metric_query(m, period=period, now=now, filters=filters, as_of=as_of)
        return [
            (r.agency, r.day, r.hits, r.total, r.pending) for r in query.daily_by_agency(client)
        ]

    calls: list[Callable[[], Any]] = [lambda m=m, g=g: figure(m, g) for m, g in grouped]
    calls += [lambda m=m: series(m) for m in DAY_METRICS]
    calls.append(lambda: index766.leaf_counts(client, period, now, (agency,), as_of=as_of))
    *results, leaves = run_all(client, calls)
    figures: dict[str, list[Any]] = {m: [] for m in METRICS}
    for (m, _), rows in zip(grouped, results, strict=False):
        figures[m] += rows
    daily = dict(zip(DAY_METRICS, results[len(grouped) :], strict=True))
    plain = {
        # a count of 0 and one left out are the same to the index (index766._counts)
        code: tuple({k: v for k, v in counts.items() if k != "watermark" and v} for counts in pair)
        for code, pair in leaves.items()
    }
    return figures, daily, plain


@pytest.mark.parametrize("caught_up", [True, False], ids=["facts", "delta"])
def test_live_answers_from_day_counts_equal_the_facts_read_a_dossier_at_a_time(
    clickhouse: Client, readers: Client, agency: str, caught_up: bool
) -> None:
    # Catches: a dossier digitised, paid or finished on the judged day counted from the day
    # counts before or after the judging instant, counted twice (day counts and facts) or not at
    # all, a withdrawal the rules leave out counted, and any of it only while the refolder is
    # behind (the delta's correction of the day counts).
    events = edge_events(agency)
    if caught_up:
        store(clickhouse, events)
        catch_up(clickhouse)
    else:
        store(clickhouse, events[: len(events) // 2])
        catch_up(clickhouse)
        store(clickhouse, events[len(events) // 2 :])  # left in the delta
    time.sleep(0.01)
    after_all = datetime.now(UTC)
    time.sleep(0.01)
    for now in (d(10, 12), d(10, 0), MARCH.end + timedelta(days=3)):
        live = answers(readers, agency, now, None)
        assert live == answers(readers, agency, now, after_all), now
    later = MARCH.end + timedelta(days=3)
    assert answers(readers, agency, later, None, FROM_FEBRUARY) == answers(
        readers, agency, later, after_all, FROM_FEBRUARY
    )
    # the instants were chosen to matter: the judged day changes what is counted
    assert answers(readers, agency, d(10, 12), None) != answers(readers, agency, d(11, 0), None)
