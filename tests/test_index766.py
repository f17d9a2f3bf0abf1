"""The QĐ 766 index: hand-computed points, missing data shown as missing, never as zero."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.figures import index766
from core.figures.index766_scores import INDICATORS, Indicator, score
from core.figures.periods import Period
from core.figures.refolder import catch_up
from core.figures.rules import get
from core.figures.sql_params import calendar
from tests import reference_fold
from tests.helpers import VN, dossier_event, eventually, publish, received, resolved
from tests.test_pipeline import d, stored
from tests.test_replay import store


@pytest.mark.asyncio(loop_scope="session")
async def test_index_for_a_hand_computed_month(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: wrong numerators/denominators, threshold scoring applied as linear (or back),
    # indicators without data scored 0 instead of missing, and a total that hides what could
    # not be assessed.
    a = agency
    events = [
        received(a, "D1", d(2), due=d(6, 17)),
        resolved(a, "D1", d(4)),  # early
        received(a, "D2", d(2), due=d(3, 17), channel="direct"),
        resolved(a, "D2", d(5)),  # late
        dossier_event("rated", a, "D2", d(6), rating="unsatisfied"),
        received(a, "D3", d(2), due=d(10, 17)),  # overdue
        received(a, "D4", d(20), due=d(10, 17, month=4), channel="direct"),  # within
    ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    # the same counts and points under both versions; the rate a fraction under reference@1,
    # a percentage under reference@2
    for rule_set, half in (("reference@1", 0.5), ("reference@2", 50.0)):
        async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
            params = {"from": "2026-03-01", "to": "2026-03-31", "agency": a, "rule_set": rule_set}
            body = (await http.get("/v1/index766", params=params)).json()
        _hand_computed_month(body, half)
        assert body["provenance"]["rule_set"] == rule_set


def _hand_computed_month(body: dict[str, Any], half: float) -> None:
    result = body["results"][0]
    ind = {i["id"]: i for i in result["indicators"]}
    # 2.1: processed = finished D1, D2 + open D3, D4 = 4; on time: D1, D4 = 2 → 0.5 × 20 = 10
    assert (ind["2.1"]["numerator"], ind["2.1"]["denominator"], ind["2.1"]["points"]) == (2, 4, 10)
    # 3.3: online (no paper result needed) D1, D3 of 4 received = 0.5 ≥ 50% → 6 (threshold)
    assert (ind["3.3"]["rate"], ind["3.3"]["points"], ind["3.3"]["rule"]) == (half, 6, "thr:0.5")
    # 5.4: 100% − (overdue D2, D3 = 50% + unsatisfied D2 = 25%) = 25%; 6 × 0.25 / 0.9 = 1.67
    assert (ind["5.4"]["numerator"], ind["5.4"]["denominator"], ind["5.4"]["points"]) == (
        1,
        4,
        1.67,
    )
    # 4.2: nothing digitised → 0 of 4 → 0 points, assessed
    assert (ind["4.2"]["points"], ind["4.2"]["missing"]) == (0, False)
    # no feedback → 6 and 6 by the reference
    assert ind["5.2"]["points"] == ind["5.3"]["points"] == 6
    # no payments, no paper-result dossiers: not assessable, so missing (not zero)
    assert ind["3.6"]["missing"] and ind["4.1"]["missing"]
    # never in the events: 1.4, 4.x, 4.3, 4.4, 4.5a, 4.5b
    for never in ("1.4", "4.x", "4.3", "4.4", "4.5a", "4.5b"):
        assert ind[never]["missing"] and ind[never]["points"] is None and ind[never]["note"]
    missing = sum(i["max_points"] for i in result["indicators"] if i["missing"])
    assert result["not_assessed_points"] == missing >= 18 + 6 + 6
    assert result["total_points"] == round(sum(i["points"] or 0 for i in ind.values()), 2)
    assert sum(g["max_points"] for g in result["groups"]) == 100


@pytest.mark.pure
def test_scoring_rules() -> None:
    # Catches: a threshold rule that does not cap at max, or reference@1's rounding (the rate
    # first, points from it) lost, or brought into reference@2 (points from the exact rate).
    thr = Indicator("x", "3", "x", 2, "thr:0.8")
    lin = Indicator("y", "2", "y", 20, "lin")
    v1, v2 = get("reference@1"), get("reference@2")
    assert get() == v2
    for rules in (v1, v2):
        assert score(thr, 9, 10, rules).points == 2  # 90% ≥ 80% → full
        assert score(thr, 6, 10, rules).points == 1.5  # 2 × 0.6 / 0.8
        assert score(thr, 8, 10, rules).points == 2  # exactly the threshold: full
    assert score(lin, 2, 3, v1).rate == 0.67  # rounded to 2 decimals first
    assert score(lin, 2, 3, v1).points == 13.4  # 20 × 0.67
    assert score(lin, 2, 3, v2).rate == 66.67  # a percentage
    assert score(lin, 2, 3, v2).points == 13.33  # 20 × 2/3 = 13.333…
    # a half rounds up, as a report rounds it, where a float's round() goes to even
    assert score(Indicator("h", "3", "h", 1.25, "lin"), 1, 10, v2).points == 0.13  # 0.125
    assert score(lin, 1, 800, v2).rate == 0.13  # 0.125 %
    assert sum(i.max_points for i in INDICATORS) == 100


@pytest.mark.pure
def test_version_2_adds_unrounded_points() -> None:
    # Catches: a group or total summed from the points as shown under reference@2 (7.12
    # below) instead of from the unrounded points, or reference@1's sums changed.
    # 5.2 and 5.3: 2 of 7 feedback each, 6 × 2/7 = 1.714… (1.71 shown); 5.4: 5 of 9 dossiers
    # on time, none unsatisfied, thr 90%: 6 × (5/9) / 0.9 = 3.7037… (3.70 shown, 3.73 under
    # reference@1 from the rate 0.56)
    dossiers = {"n_finished": 9, "n_finished_ok": 5}
    feedback = {"n_filed": 7, "n_handled_ok": 2, "n_not_satisfied": 5}
    march = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))

    def group_5(rule_set: str) -> tuple[list[float | None], float, float]:
        index = index766.index_for(dossiers, feedback, None, march, calendar(), get(rule_set))
        points = [s.points for s in index.scores if s.indicator.group == "5"]
        group = next(g["points"] for g in index.groups() if g["group"] == "5")
        return points, group, index.total

    # 3.7037 + 1.7143 + 1.7143 = 7.1322 → 7.13 (the shown points add up to 7.12); the total
    # adds 2.1 (5/9 × 20 = 11.1111): 18.2434 → 18.24 (shown: 18.23)
    assert group_5("reference@2") == ([1.71, 1.71, 3.7], 7.13, 18.24)
    # reference@1: rates 0.29, 0.29, 0.56 → 1.74 + 1.74 + 3.73 = 7.21; + 2.1's 11.2 = 18.41
    assert group_5("reference@1") == ([1.74, 1.74, 3.73], 7.21, 18.41)


async def test_five_of_nine_under_both_versions(
    system: Any, nc: NatsClient, clickhouse: Client, agency: str
) -> None:
    # Catches: the 766 rate given as a rounded fraction under reference@2 (0.56 instead of
    # 55.56), points scored from the rounded rate there (11.2 instead of 11.11), or
    # reference@1's answers moved (0.56, 11.2) by the new default; and an answer that does not
    # say which unit its rates are in.
    a = agency
    events = []
    for n in range(9):  # due Tue 10/3 17:00; five resolved on 5/3, four on 12/3 (late)
        events += [
            received(a, f"N{n}", d(2), due=d(10, 17)),
            resolved(a, f"N{n}", d(5) if n < 5 else d(12)),
        ]
    for e in events:
        await publish(nc, e)
    await eventually(lambda: stored(clickhouse, a) == len(events))
    bodies = {}
    async with httpx.AsyncClient(base_url=system.api_url, headers=system.api_headers) as http:
        for rule_set in (None, "reference@1", "reference@2"):
            params = {"from": "2026-03-01", "to": "2026-03-31", "agency": a}
            if rule_set is not None:
                params["rule_set"] = rule_set
            bodies[rule_set] = (await http.get("/v1/index766", params=params)).json()

    # the default (the catalogue indicators left out: the session's seed catalogue may still be
    # arriving between two requests)
    def from_events(body: dict[str, Any]) -> list[dict[str, Any]]:
        indicators = body["results"][0]["indicators"]
        return [i for i in indicators if i["id"] in index766.FROM_EVENTS]

    assert bodies[None]["provenance"]["rule_set"] == "reference@2"
    assert from_events(bodies[None]) == from_events(bodies["reference@2"])
    want = {
        # (rate, points) of 2.1 and of 5.4 (5 of 9 on time, thr 90%), the unit, group 2's points
        "reference@1": ((0.56, 11.2), (0.56, 3.73), "fraction", 11.2),
        "reference@2": ((55.56, 11.11), (55.56, 3.7), "percent", 11.11),
    }
    for rule_set, (on_time, satisfied, unit, group_2) in want.items():
        body = bodies[rule_set]
        result = body["results"][0]
        ind = {i["id"]: i for i in result["indicators"]}
        assert (ind["2.1"]["numerator"], ind["2.1"]["denominator"]) == (5, 9)
        assert (ind["2.1"]["rate"], ind["2.1"]["points"]) == on_time
        assert (ind["5.4"]["rate"], ind["5.4"]["points"]) == satisfied
        assert body["rate_unit"] == unit
        assert next(g["points"] for g in result["groups"] if g["group"] == "2") == group_2
    # reference@2's total, computed here from each indicator's numerator and denominator
    # (catalogue indicators included), unrounded until the end
    result = bodies["reference@2"]["results"][0]
    exact = sum((_exact(i) for i in result["indicators"]), Fraction(0))
    assert result["total_points"] == math.floor(exact * 100 + Fraction(1, 2)) / 100


def _exact(indicator: dict[str, Any]) -> Fraction:
    """An indicator's points by the metrics reference §4, exactly, from its counts."""
    top = Fraction(indicator["max_points"])
    if indicator["points"] is None:
        return Fraction(0)
    if not indicator["denominator"]:
        return Fraction(str(indicator["points"]))  # the empty-population rule (5.2, 5.3)
    rate = Fraction(indicator["numerator"], indicator["denominator"])
    if indicator["rule"] == "lin":
        return top * rate
    threshold = Fraction(indicator["rule"].removeprefix("thr:"))
    return top if rate >= threshold else top * rate / threshold


def test_flows_split_between_the_day_counts_and_todays_facts(clickhouse: Client) -> None:
    # Catches: a dossier counted twice or not at all by the index's flows when its anchors lie
    # on both sides of today's cut (received yesterday, finished or paid today), whether its
    # facts are folded or it is one of the delta's items the refolder has not caught up with
    # (its stored row taken away from the flows whose day counts held it, its fold added).
    a = f"F{uuid.uuid4().hex[:8].upper()}"
    now = datetime(2026, 3, 18, 12, tzinfo=VN)

    def at(day: int, hour: int) -> datetime:
        return datetime(2026, 3, day, hour, tzinfo=VN)

    def paid(did: str, when: datetime) -> dict[str, Any]:
        return dossier_event("paid", a, did, when, channel="online", amount_vnd=50_000)

    due = now + timedelta(days=5)
    store(
        clickhouse,
        [
            received(a, "D1", at(17, 9), due=due),
            resolved(a, "D1", at(18, 9)),  # received yesterday, finished today
            received(a, "D2", at(18, 8), due=due),
            resolved(a, "D2", at(18, 10)),  # both today
            received(a, "D3", at(15, 9), due=due),
            paid("D3", at(18, 11)),  # received before, paid today
            received(a, "D4", at(16, 9), due=due),
            resolved(a, "D4", at(17, 9)),  # all before today
            received(a, "D5", at(16, 9), due=due, channel="direct"),
            paid("D5", at(16, 10)),
        ],
    )
    catch_up(clickhouse)
    march = Period.from_dates(date(2026, 3, 1), date(2026, 3, 31))
    rules = get()

    def agree() -> None:
        fast = index766.leaf_counts(clickhouse, march, now, (a,), rule_set=rules)
        want = reference_fold.leaf_counts(clickhouse, march, now, (a,), rule_set=rules)
        drop = ("watermark", "events", "agency_code")
        plain = [
            {k: sorted(v) if isinstance(v, list) else v for k, v in c.items() if k not in drop}
            for c in (fast[a][0], want[a][0])
        ]
        assert plain[0] == plain[1]

    agree()
    # the delta: D4 rated today, D5 resolved today, D1 paid today, none folded yet
    store(
        clickhouse,
        [
            dossier_event("rated", a, "D4", at(18, 9), rating="unsatisfied"),
            resolved(a, "D5", at(18, 9)),
            paid("D1", at(18, 11)),
        ],
    )
    agree()
    assert datetime.now(UTC) > now  # the instant judged is a past one, as the oracle's
