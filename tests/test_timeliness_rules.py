"""Apology compliance, the leading indicator, and feedback deadlines in working days."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.figures import rules
from core.figures.metric_query import metric_query
from core.figures.periods import Filters, Period
from core.reference.calendar import WorkingCalendar
from tests.helpers import (
    VN,
    dossier_event,
    eventually,
    feedback_event,
    filed,
    publish,
    received,
    resolved,
)
from tests.test_pipeline import d, stored

pytestmark = pytest.mark.asyncio(loop_scope="session")
MARCH = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))


def figure(
    client: Client,
    metric: str,
    agency: str,
    period: Period,
    now: datetime,
    rule_set: str | None = None,
    as_of: datetime | None = None,
) -> tuple[int, int]:
    rows = metric_query(
        metric,
        period=period,
        now=now,
        filters=Filters(agencies=(agency,)),
        rule_set=rules.get(rule_set),
        as_of=as_of,
    ).run(client)
    return (rows[0].numerator, rows[0].denominator) if rows else (0, 0)


def apology(agency: str, dossier_id: str, at: datetime, new_due: datetime) -> dict[str, Any]:
    return dossier_event("apology_issued", agency, dossier_id, at, new_due_at=new_due.isoformat())


async def test_apology_compliance_one_day_too_late_and_second_reschedule(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: an apology counted although issued after the deadline (one working day before the
    # original due date, weekends skipped), a second reschedule not treated as a violation, and
    # on-time dossiers counted in the population.
    a = agency
    events = [
        # P1: due Tue 3/10; apology Mon 3/9 = 1 working day before → compliant; resolved late
        received(a, "P1", d(2), due=d(10, 17)),
        apology(a, "P1", d(9, 10), d(13, 17)),
        resolved(a, "P1", d(12)),
        # P2: due Mon 3/9 → deadline Fri 3/6; apology Sat 3/7 is one day too late
        received(a, "P2", d(2), due=d(9, 17)),
        apology(a, "P2", d(7, 10), d(12, 17)),
        resolved(a, "P2", d(11)),
        # P3: late with no apology at all
        received(a, "P3", d(2), due=d(5, 17)),
        resolved(a, "P3", d(6)),
        # P4: two reschedules (3/6 and 3/12): a violation even though the first was in time
        received(a, "P4", d(2), due=d(10, 17)),
        apology(a, "P4", d(6), d(12, 17)),
        apology(a, "P4", d(12), d(16, 17)),
        resolved(a, "P4", d(16)),
        # P5: on time: not in the population
        received(a, "P5", d(2), due=d(20, 17)),
        resolved(a, "P5", d(19)),
    ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    now = datetime(2026, 11, 1, tzinfo=VN)
    # late, each past its original due date: P1..P4 = 4; compliant: P1 → 1/4, under both
    # versions of the reference
    for rule_set in ("reference@1", "reference@2"):
        assert figure(clickhouse, "apology_compliance", a, MARCH, now, rule_set) == (1, 4)


async def test_leading_indicator_counts_dossiers_due_within_three_working_days(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: a horizon counted in calendar days (the weekend of 3/14–15 must be skipped),
    # dossiers already late or already apologised for counted as at risk.
    a = agency
    events = [
        received(a, "L1", d(2), due=d(17, 17)),  # due soon
        received(a, "L2", d(2), due=d(18, 17)),
        apology(a, "L2", d(12), d(20, 17)),  # apologised
        received(a, "L3", d(2), due=d(19, 17)),  # beyond
        received(a, "L4", d(2), due=d(12, 9)),  # already late
    ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    # judged Fri 3/13 12:00: the 3rd working day after is Wed 3/18 (Mon 16, Tue 17, Wed 18)
    now = datetime(2026, 3, 13, 12, tzinfo=VN)
    # open within deadline: L1, L2, L3 = 3; due by 3/18 without apology: L1 → 1/3, under both
    # versions of the reference
    for rule_set in ("reference@1", "reference@2"):
        assert figure(clickhouse, "due_soon_without_apology", a, MARCH, now, rule_set) == (1, 3)


async def test_feedback_deadline_skips_the_tet_holiday(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: feedback deadlines counted in calendar days or plain weekdays (Tết 14–22/2/2026
    # must not count), or taken from the source's due_at against the rule set.
    a = agency
    filed_at = datetime(2026, 2, 10, 9, tzinfo=VN)
    naive_due = datetime(2026, 3, 3, 17, tzinfo=VN)  # what a Mon–Fri count would give
    events = [
        filed(a, "F1", filed_at, due=naive_due),
        feedback_event("answered", a, "F1", datetime(2026, 3, 10, 15, tzinfo=VN)),
        filed(a, "F2", filed_at, due=naive_due),
        feedback_event("answered", a, "F2", datetime(2026, 3, 11, 9, tzinfo=VN)),
        filed(a, "F3", filed_at, due=naive_due),
    ]
    for e in events:
        await publish(nc, e)

    def feedback_stored() -> bool:
        return clickhouse.query(
            "SELECT sum(event_count) FROM feedback WHERE agency_code = {a:String}",
            parameters={"a": a},
        ).result_rows[0][0] == len(events)

    await eventually(feedback_stored)
    # 15 working days after Tue 10/2: 11, 12, 13/2 (3), Tết 14–22/2 skipped, 23–27/2 (8),
    # 2–6/3 (13), 9/3 (14), 10/3 (15) → deadline Tue 10/3/2026
    assert WorkingCalendar.load().add_working_days(date(2026, 2, 10), 15) == date(2026, 3, 10)
    period = Period.from_dates(date(2026, 2, 1), date(2026, 3, 31))
    now = datetime(2026, 11, 1, tzinfo=VN)
    # F1 answered 10/3 → on time; F2 11/3 → late; F3 open past 10/3 → open overdue: 1/3 each,
    # under both versions of the reference
    for rule_set in ("reference@1", "reference@2"):
        for metric in ("feedback_answered_on_time", "feedback_answered_late"):
            assert figure(clickhouse, metric, a, period, now, rule_set) == (1, 3)
        assert figure(clickhouse, "feedback_open_overdue", a, period, now, rule_set) == (1, 3)
