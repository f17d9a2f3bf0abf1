"""Apology compliance's population under each rule set version (metrics reference §2, issue 15).

reference@1 judged every late dossier; from reference@2 only those whose original due date passed
before they finished, or that are open past it: the apology letter (Mẫu 04) is for a missed date,
and a dossier late only by the more-than-one-supplement rule has none. "Passed" is the §2 clock
(supplement pauses deducted) against due_at at the rule set's boundary.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures import rules
from core.figures.metric_query import MetricQuery, metric_query
from core.figures.periods import Filters
from core.figures.refolder import catch_up
from tests.helpers import dossier_event, received, resolved
from tests.test_pipeline import d
from tests.test_replay import store
from tests.test_timeliness_rules import MARCH, apology

RULE_SETS = ("reference@1", "reference@2", "lenient-boundary@1", "lenient-boundary@2")
NOW = d(13, 12)  # Fri 13/3/2026 12:00: the figures are judged here, within March


def supplements(agency: str, dossier_id: str, *pairs: tuple[datetime, datetime]) -> list[Any]:
    """A supplement request and the citizen's resubmission for each (asked, resubmitted)."""
    out = []
    for asked, back in pairs:
        out.append(dossier_event("supplement_requested", agency, dossier_id, asked))
        out.append(dossier_event("supplement_received", agency, dossier_id, back))
    return out


def case_set(a: str) -> list[dict[str, Any]]:
    """Eight dossiers received Mon 2/3, each a case of the population."""
    return [
        # A1: late (resolved 9/3, due Fri 6/3), apology Thu 5/3 = 1 working day before: complies
        received(a, "A1", d(2), due=d(6, 17)),
        apology(a, "A1", d(5, 10), d(11, 17)),
        resolved(a, "A1", d(9)),
        # A2: two supplement requests, resolved 5/3 well before its due date 12/3: late by the
        # rule only, no date missed
        received(a, "A2", d(2), due=d(12, 17)),
        *supplements(a, "A2", (d(3, 9), d(3, 15)), (d(4, 9), d(4, 15))),
        resolved(a, "A2", d(5)),
        # A3: two requests, resolved 10/3 after its due date 6/3, but 6 days 1 hour waiting for
        # the citizen: its clock ends 4/3 08:00, before the due date: no date missed either
        received(a, "A3", d(2), due=d(6, 17)),
        *supplements(a, "A3", (d(3, 9), d(9, 9)), (d(9, 10), d(9, 11))),
        resolved(a, "A3", d(10)),
        # A4: two requests and past its due date 5/3 (clock ends 9/3 07:00): a date missed
        received(a, "A4", d(2), due=d(5, 17)),
        *supplements(a, "A4", (d(3, 9), d(3, 10)), (d(3, 11), d(3, 12))),
        resolved(a, "A4", d(9)),
        # A5: open, two requests, due Tue 17/3: late by the rule, its date not passed yet
        received(a, "A5", d(2), due=d(17, 17)),
        *supplements(a, "A5", (d(3, 9), d(3, 10)), (d(4, 9), d(4, 10))),
        # A6: open past its due date 11/3, no apology
        received(a, "A6", d(2), due=d(11, 17)),
        # A7: open, due 31/3
        received(a, "A7", d(2), due=d(31, 17)),
        # A8: resolved 10/3 18:00, due 10/3 17:00: late by the instant (reference), on time by
        # the day (lenient-boundary)
        received(a, "A8", d(2), due=d(10, 17)),
        resolved(a, "A8", d(10, 18)),
    ]


# rule set → (apology compliance, its population's dossiers, the leading indicator) at NOW.
# The leading indicator's horizon from Fri 13/3 is Wed 18/3 (3 working days); its population
# is the open dossiers not in apology compliance's.
WANT: dict[str, tuple[tuple[int, int], set[str], tuple[int, int]]] = {
    "reference@1": ((1, 7), {"A1", "A2", "A3", "A4", "A5", "A6", "A8"}, (0, 1)),
    "reference@2": ((1, 4), {"A1", "A4", "A6", "A8"}, (1, 2)),
    "lenient-boundary@1": ((1, 6), {"A1", "A2", "A3", "A4", "A5", "A6"}, (0, 1)),
    "lenient-boundary@2": ((1, 3), {"A1", "A4", "A6"}, (1, 2)),
}
# Judged at the end of Mon 9/3 (a day bucket): A1, A4 finished past their dates; A3 and A5
# open with two requests, their dates not passed; A2 finished before its date.
WANT_9_MARCH = {"reference@1": (1, 5), "reference@2": (1, 2)}


def query(metric: str, agency: str, rule_set: str, **kwargs: Any) -> MetricQuery:
    return metric_query(
        metric,
        period=MARCH,
        now=NOW,
        filters=Filters(agencies=(agency,)),
        rule_set=rules.get(rule_set),
        **kwargs,
    )


def figure(client: Client, metric: str, agency: str, rule_set: str, **kwargs: Any) -> Any:
    return [
        (r.group, r.numerator, r.denominator)
        for r in query(metric, agency, rule_set, **kwargs).run(client)
    ]


def test_apology_population_by_rule_set_on_every_path(clickhouse: Client) -> None:
    # Catches: reference@2 counting a dossier late only by its second supplement request (A2,
    # A3, A5) as owing an apology, "due date passed" read on the wall clock instead of the §2
    # clock (A3) or ignoring the lenient boundary (A8), reference@1's population moved, the
    # leading indicator leaving out an open dossier no longer in the population (A5), and any
    # path (the parts' fold, the folded facts, as of an instant, a day bucket, the drill-down)
    # judging the population differently.
    a = f"AP{uuid.uuid4().hex[:8].upper()}"
    store(clickhouse, case_set(a))
    stored_at = datetime.now(UTC)

    def check(as_of: datetime | None = None) -> None:
        for rule_set, (compliance, _, leading) in WANT.items():
            got = figure(clickhouse, "apology_compliance", a, rule_set, as_of=as_of)
            assert got == [(None, *compliance)], rule_set
            got = figure(clickhouse, "due_soon_without_apology", a, rule_set, as_of=as_of)
            assert got == [(None, *leading)], rule_set

    check()  # folded from the parts: the refolder has not taken them yet
    catch_up(clickhouse)
    check()  # from the facts
    check(as_of=stored_at)
    for rule_set, want in WANT_9_MARCH.items():
        rows = figure(clickhouse, "apology_compliance", a, rule_set, group_by="day")
        days = {group: (n, den) for group, n, den in rows}
        assert days["2026-03-09"] == want, rule_set
        assert days["2026-03-13"] == WANT[rule_set][0], rule_set
    for rule_set, (_, population, _) in WANT.items():
        total, page = query("apology_compliance", a, rule_set).items(
            clickhouse, "denominator", 100, 0
        )
        assert (total, {row["dossier_id"] for row in page}) == (len(population), population)
