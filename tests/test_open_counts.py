"""The open counts (migration 0032, core/figures/open_counts.py): dossiers open at an instant,
judged from a count per receipt day and due day where no row of theirs is needed.

Hand-computed columns 12-13 of Biểu II.06a and the 766 index's open dossiers at the edges the
counts decide by the day: a due date on the judging instant's own day, at a local midnight (a
past period's end) and not (a live figure), under the exact and the day-level rules; a receipt
on that day; a pending supplement request and a dossier finished since, which the counts do not
hold; and a dossier the refolder has not caught up with, whose held row is taken away again.
Each answer is also held to the plain fold of the raw events (tests/reference_fold.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures import index766, report_ii06a, rules
from core.figures.periods import Period
from core.figures.refolder import catch_up
from tests import reference_fold
from tests.helpers import VN, dossier_event, received, resolved
from tests.test_replay import store


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=VN)


MARCH = Period.from_dates(at(3, 1).date(), at(3, 31).date())
APRIL = Period.from_dates(at(4, 1).date(), at(4, 30).date())
# a live figure of April judged at 10:00 on its first day; March judged at its end (midnight)
NOW = at(4, 1, 10)


def history(a: str) -> list[dict[str, Any]]:
    return [
        received(a, "O1", at(3, 2), due=at(3, 31, 17)),  # due before both instants' day
        received(a, "O2", at(3, 3), due=at(4, 1, 9)),  # due on the day, before 10:00
        received(a, "O3", at(3, 4), due=at(4, 1, 11)),  # due on the day, after 10:00
        received(a, "O4", at(3, 5), due=at(4, 2, 17)),
        received(a, "O5", at(4, 1, 8), due=at(4, 3, 17)),  # received on the day, before 10:00
        received(a, "O6", at(4, 1, 11), due=at(4, 3, 17)),  # received after 10:00
        received(a, "O9", at(4, 1, 0), due=at(4, 3, 17)),  # received at the day's first instant
        # its clock stopped on 10 March (before its due date) and has not run since
        received(a, "O7", at(3, 6), due=at(3, 20, 17)),
        dossier_event("supplement_requested", a, "O7", at(3, 10)),
        # open at March's end, finished before 10:00 on 1 April
        received(a, "O8", at(3, 7), due=at(3, 25, 17)),
        resolved(a, "O8", at(4, 1, 9)),
    ]


def pending(client: Client, period: Period, a: str, rule_set: str) -> tuple[int, int]:
    """Columns 12 and 13 (within, overdue), after checking the whole report and the index's
    open counts against the plain fold."""
    ruled = rules.get(rule_set)
    report = report_ii06a.compute(client, period, NOW, (a,), None, ruled)
    rows = [r.as_dict() for r in report.rows]
    want = reference_fold.ii06a(client, period, NOW, (a,), None, ruled)
    events = sum(r.pop("events") for r in want)
    assert rows == want and report.events == events
    fast = index766.leaf_counts(client, period, NOW, (a,), rule_set=ruled)[a][0]
    oracle = reference_fold.leaf_counts(client, period, NOW, (a,), rule_set=ruled)[a][0]
    for key in ("n_open_end", "n_open_ok", "n_unsatisfied"):
        assert fast.get(key, 0) == oracle.get(key, 0), key
    (row,) = report.rows
    assert fast["n_open_end"] == row.pending_total
    assert fast["n_open_ok"] == row.pending_within
    return row.pending_within, row.pending_overdue


def test_open_dossiers_at_the_edges_of_a_day(clickhouse: Client, agency: str) -> None:
    # Catches: a due date on the judging day judged by the day where the instant decides (or
    # the other way), a receipt on the judging day counted before it happened, a paused or
    # since-finished dossier taken from the counts, and the delta's dossiers counted twice.
    a = agency
    store(clickhouse, history(a))
    catch_up(clickhouse)
    held = clickhouse.query(
        "SELECT sum(n) FROM dossier_open WHERE agency_code = {a:String}", parameters={"a": a}
    ).result_rows[0][0]
    assert held == 7  # O1-O6, O9: no supplement request, not finished

    # March, judged at 1 April 00:00: overdue O1, O8; within O2, O3, O4, O7 (both rules)
    assert pending(clickhouse, MARCH, a, "reference@1") == (4, 2)
    assert pending(clickhouse, MARCH, a, "lenient-boundary@1") == (4, 2)
    # April, live at 1 April 10:00: O2 is late by the instant, not by the day; O5 and O9
    # count, O6 does not yet; O8 has finished
    assert pending(clickhouse, APRIL, a, "reference@1") == (5, 2)  # O3 O4 O5 O7 O9 | O1 O2
    assert pending(clickhouse, APRIL, a, "lenient-boundary@1") == (6, 1)

    # O4 resolved on 31 March, stored but not folded: the counts still hold it open
    store(clickhouse, [resolved(a, "O4", at(3, 31))])
    assert pending(clickhouse, MARCH, a, "reference@1") == (3, 2)
    assert pending(clickhouse, APRIL, a, "reference@1") == (4, 2)
    catch_up(clickhouse)
    assert pending(clickhouse, MARCH, a, "reference@1") == (3, 2)
