"""The QĐ 766 index (100 points) per agency scope and period, as the metrics reference §4 writes it.

Each indicator carries its numerator, denominator, rate (in the rule set's unit and decimals),
points and the scoring rule used. An indicator the events and the catalogue cannot support is
reported as missing, never as zero, and the total says how many points could not be assessed.

How a rate becomes points is a rule (rules.Rules.points_from): reference@1 scored the rate as
shown, a fraction rounded to 2 decimals (5/9 → 0.56, 11.2 of 20 points), and added the points as
shown; from reference@2 the rate is a percentage like every other figure (55.56) and points come
from the exact numerator / denominator (11.11), kept exact (Fraction) until shown, so a group or
the total is the sum of unrounded points, rounded once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from core.figures import days, rules
from core.figures.definitions import (
    ANSWERED_IN_TIME,
    ANSWERED_LATE,
    FILED,
    T_DAY,
    UNANSWERED,
    Reads,
)
from core.figures.queries import (
    SINGLE_T,
    Layer,
    Period,
    Read,
    Split,
    at_t_dossiers,
    consistently,
    day_split,
    feedback_rows,
    flow_facts,
    flow_side,
    judged_dossiers,
    named_rows,
    part_month_of,
    plain_dossiers,
    prune_clause,
    scope_params,
    utc,
)
from core.figures.rules import RuleSet
from core.reference.catalog import Catalog, ProcedureInfo
from core.reference.org_tree import OrgTree
from core.storage.pool import run_all


class WorkingDays(Protocol):
    @property
    def version(self) -> str: ...

    def working_days_between(self, a: date, b: date) -> int: ...


@dataclass(frozen=True)
class Indicator:
    id: str
    group: str
    label: str
    max_points: float
    rule: str  # "lin" or "thr:<T>"
    empty_points: float | None = None  # points when the denominator is 0; None: missing
    missing_reason: str = ""  # set: the data cannot support it (always missing)


GROUPS = {
    "1": ("Công khai, minh bạch", 18),
    "2": ("Tiến độ, kết quả giải quyết", 20),
    "3": ("Dịch vụ công trực tuyến", 12),
    "3p": ("Thanh toán trực tuyến", 10),
    "4": ("Số hóa hồ sơ", 22),
    "5": ("Mức độ hài lòng", 18),
}

_NO_EVENTS = "dữ liệu này không có trong sự kiện hồ sơ (cần số liệu của Cổng DVC quốc gia)"

INDICATORS: tuple[Indicator, ...] = (
    Indicator("1.1", "1", "TTHC công bố đúng hạn", 6, "lin"),
    Indicator("1.2", "1", "TTHC cập nhật, công khai đúng hạn", 4, "lin"),
    Indicator("1.3", "1", "TTHC công khai đầy đủ", 2, "lin"),
    Indicator("1.4", "1", "Hồ sơ đồng bộ lên Cổng DVCQG", 6, "lin", missing_reason=_NO_EVENTS),
    Indicator("2.1", "2", "Hồ sơ xử lý trước hạn, đúng hạn", 20, "lin"),
    Indicator("3.1", "3", "TTHC cung cấp DVCTT", 2, "thr:0.8"),
    Indicator("3.2", "3", "DVCTT có phát sinh hồ sơ", 4, "lin"),
    Indicator("3.3", "3", "Hồ sơ trực tuyến", 6, "thr:0.5"),
    Indicator("3.5", "3p", "TTHC có NVTC tích hợp thanh toán trực tuyến", 2, "thr:0.8"),
    Indicator("3.5b", "3p", "TTHC có giao dịch thanh toán trực tuyến", 2, "thr:0.8"),
    Indicator("3.6", "3p", "Hồ sơ thanh toán trực tuyến", 6, "lin"),
    Indicator("4.1", "4", "Hồ sơ có kết quả điện tử", 6, "lin"),
    Indicator("4.2", "4", "Hồ sơ thực hiện số hóa", 4, "thr:0.8"),
    Indicator(
        "4.x", "4", "Xã cung cấp chứng thực bản sao điện tử", 2, "lin", missing_reason=_NO_EVENTS
    ),
    Indicator(
        "4.3", "4", "Hồ sơ tái sử dụng dữ liệu số hóa", 2, "thr:0.8", missing_reason=_NO_EVENTS
    ),
    Indicator("4.4", "4", "Hồ sơ số hóa kết nối kho dữ liệu", 4, "lin", missing_reason=_NO_EVENTS),
    Indicator(
        "4.5a", "4", "TTHC kết nối CSDL quốc gia về dân cư", 2, "lin", missing_reason=_NO_EVENTS
    ),
    Indicator(
        "4.5b", "4", "Hồ sơ kết nối CSDL quốc gia về dân cư", 2, "lin", missing_reason=_NO_EVENTS
    ),
    Indicator("5.2", "5", "PAKN xử lý đúng hạn", 6, "lin", empty_points=6),
    Indicator("5.3", "5", "Hài lòng trong xử lý PAKN", 6, "lin", empty_points=6),
    Indicator(
        "5.4", "5", "Hài lòng trong tiếp nhận, giải quyết TTHC", 6, "thr:0.9", empty_points=0
    ),
)


@dataclass
class Score:
    indicator: Indicator
    numerator: int | None
    denominator: int | None
    rate: float | None  # in the rule set's unit (rules.Rules.rate_unit), rounded
    points: float | None  # rounded to 2 decimals
    rule: str
    note: str = ""
    # The points unrounded, what a group's and the total's points add up when the rule set
    # keeps them exact (points_from exact_rate); None otherwise, and when missing.
    exact_points: Fraction | None = None

    def as_dict(self) -> dict[str, Any]:
        i = self.indicator
        return {
            "id": i.id,
            "group": i.group,
            "label": i.label,
            "max_points": i.max_points,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "rate": self.rate,
            "points": self.points,
            "rule": self.rule,
            "missing": self.points is None,
            "note": self.note,
        }


@dataclass
class Index766:
    scores: list[Score]
    events: int
    watermark: datetime | None
    rule_set: str
    calendar: str
    catalog: str
    notes: list[str] = field(default_factory=list)
    exact: bool = False  # points kept exact until shown (rules.Rules.points_from)

    def groups(self) -> list[dict[str, Any]]:
        out = []
        for gid, (label, max_points) in GROUPS.items():
            mine = [s for s in self.scores if s.indicator.group == gid]
            out.append(
                {
                    "group": gid,
                    "label": label,
                    "max_points": max_points,
                    "points": _points_sum(mine, self.exact),
                    "not_assessed_points": sum(
                        s.indicator.max_points for s in mine if s.points is None
                    ),
                }
            )
        return out

    @property
    def total(self) -> float:
        return _points_sum(self.scores, self.exact)

    @property
    def not_assessed(self) -> float:
        return sum(s.indicator.max_points for s in self.scores if s.points is None)


def _points_sum(scores: list[Score], exact: bool) -> float:
    """The scores' points added up and rounded once: `exact`, their unrounded points; else as
    reference@1 added them (the points as shown, Python's round)."""
    if exact:
        return half_up(sum((s.exact_points for s in scores if s.exact_points), Fraction(0)), 2)
    return round(sum(s.points or 0 for s in scores), 2)


def half_up(value: Fraction, decimals: int) -> float:
    """`value` (≥ 0) to `decimals` decimals, a half rounded up as a report rounds it, exactly:
    a float's round() rounds half to even on a binary approximation (round(0.125, 2) is 0.12,
    round(1.005, 2) is 1.0)."""
    return _half_up_ratio(value.numerator, value.denominator, decimals)


def _half_up_ratio(p: int, q: int, decimals: int) -> float:
    """half_up(p / q) in integers: a Fraction for each step made scoring an agency tree four
    times slower (18 ms instead of 4 at 10M)."""
    scale: int = 10**decimals
    return (2 * p * scale + q) // (2 * q) / scale


def score(indicator: Indicator, num: int | None, den: int | None, rule_set: RuleSet) -> Score:
    rule = indicator.rule
    if indicator.id == "4.2" and rule_set.rules.score_4_2 == "lin":
        rule = "lin"
    if indicator.missing_reason:
        return Score(indicator, None, None, None, None, rule, indicator.missing_reason)
    if num is None or den is None:
        return Score(indicator, num, den, None, None, rule, "không đủ dữ liệu danh mục")
    exact = rule_set.rules.points_from == "exact_rate"
    if den == 0:
        if indicator.empty_points is None:
            return Score(indicator, num, den, None, None, rule, "không có đối tượng trong kỳ")
        empty = indicator.empty_points
        return Score(
            indicator,
            num,
            den,
            None,
            empty,
            rule,
            "không có đối tượng trong kỳ: điểm theo quy định",
            Fraction(empty) if exact else None,
        )
    if exact:
        points = _exact_points(indicator, rule, Fraction(num, den))
        rate = _shown_rate(num, den, rule_set)
        return Score(indicator, num, den, rate, half_up(points, 2), rule, exact_points=points)
    return _rounded_rate_score(indicator, rule, num, den, rule_set)


def _shown_rate(num: int, den: int, rule_set: RuleSet) -> float:
    r = rule_set.rules
    scale = 100 if r.rate_unit == "percent" else 1
    return _half_up_ratio(num * scale, den, r.rate_decimals)


def _exact_points(indicator: Indicator, rule: str, rate: Fraction) -> Fraction:
    top = Fraction(indicator.max_points)
    if rule == "lin":
        return top * rate
    threshold = Fraction(rule.split(":")[1])  # "0.8" → 4/5, exactly
    return top if rate >= threshold else top * rate / threshold


def _rounded_rate_score(
    indicator: Indicator, rule: str, num: int, den: int, rule_set: RuleSet
) -> Score:
    """reference@1's scoring, kept as it computed: the rate rounded as a float first (Python's
    round), points from that rounded rate."""
    r = rule_set.rules
    rate = round(num / den, r.rate_decimals)
    fraction = rate
    if r.rate_unit == "percent":
        rate = round(100 * num / den, r.rate_decimals)
        fraction = rate / 100
    if rule == "lin":
        points = indicator.max_points * fraction
    else:
        threshold = float(rule.split(":")[1])
        points = indicator.max_points * (1 if fraction >= threshold else fraction / threshold)
    return Score(indicator, num, den, rate, round(points, 2), rule)


# The dossier counts come from three reads, each pruned to the rows it can count: finished in
# the period or open at its end (judged), received in it, paid in it. A dossier's events count
# once, in the first read whose population it is in.
_FINISHED_OR_OPEN = "finished OR open_end"
_DOSSIER_PARTS: dict[Reads, str] = {
    "finished_or_open": f"""
SELECT agency_code,
    sumIf(sign, finished) AS n_finished,
    sumIf(sign, finished AND timeliness != 'late') AS n_finished_ok,
    sumIf(sign, open_end) AS n_open_end,
    sumIf(sign, open_end AND timeliness != 'late') AS n_open_ok,
    sumIf(sign, finished AND paper_result_required = 1) AS n_paper,
    sumIf(sign, finished AND paper_result_required = 1 AND e_result = 1) AS n_paper_e,
    sumIf(sign, ({_FINISHED_OR_OPEN}) AND last_rating.2 = 'unsatisfied') AS n_unsatisfied,
    sumIf(sign * event_count, {_FINISHED_OR_OPEN}) AS events,
    maxIf(last_ingested_at, sign > 0 AND ({_FINISHED_OR_OPEN})) AS watermark
FROM ({{source}})
GROUP BY agency_code
""",
    "received": f"""
SELECT agency_code,
    sumIf(sign, received_in) AS n_received,
    sumIf(sign, received_in AND channel = 'online'
                AND (paper_result_required = 0 OR e_result = 1)) AS n_received_online_e,
    sumIf(sign, received_in AND digitized_at IS NOT NULL AND digitized_at < t) AS n_digitized,
    sumMapIf([assumeNotNull(procedure_code)], [toInt64(sign)],
             received_in AND channel = 'online' AND procedure_code IS NOT NULL) AS procs,
    arrayFilter((p, n) -> n > 0, procs.1, procs.2) AS n_procs_online,
    sumIf(sign * event_count, received_in AND NOT ({_FINISHED_OR_OPEN})) AS events,
    maxIf(last_ingested_at, sign > 0 AND received_in AND NOT ({_FINISHED_OR_OPEN})) AS watermark
FROM ({{source}})
GROUP BY agency_code
""",
    "paid": f"""
SELECT agency_code,
    sumIf(sign, paid_in AND paid_amount > 0) AS n_paid,
    sumIf(sign, paid_in AND paid_online) AS n_paid_online,
    sumMapIf([assumeNotNull(procedure_code)], [toInt64(sign)],
             paid_in AND paid_online AND procedure_code IS NOT NULL) AS procs,
    arrayFilter((p, n) -> n > 0, procs.1, procs.2) AS n_procs_paid_online,
    sumIf(sign * event_count, paid_in AND NOT received_in AND NOT ({_FINISHED_OR_OPEN}))
        AS events,
    maxIf(last_ingested_at,
          sign > 0 AND paid_in AND NOT received_in AND NOT ({_FINISHED_OR_OPEN})) AS watermark
FROM ({{source}})
GROUP BY agency_code
""",
}

_DOSSIER_ROW = Layer(
    """
    end_at IS NOT NULL AND end_at >= period_start AND end_at < t AS finished,
    received_at < t AND (end_at IS NULL OR end_at >= t) AS open_end,
    received_at >= period_start AND received_at < period_end AS received_in,
    paid_at IS NOT NULL AND paid_at >= period_start AND paid_at < t AS paid_in""",
    "due_at IS NOT NULL",
)

_FEEDBACK_SQL = f"""
SELECT
    agency_code,
    sum(sign) AS n_filed,
    sumIf(sign, {ANSWERED_IN_TIME} OR {UNANSWERED} AND {T_DAY} <= deadline_day) AS n_handled_ok,
    sumIf(sign, last_rating.2 = 'unsatisfied' OR {ANSWERED_LATE}
                OR {UNANSWERED} AND {T_DAY} > deadline_day) AS n_not_satisfied,
    sum(sign * event_count) AS events, maxIf(last_ingested_at, sign > 0) AS watermark
FROM ({{rows}})
WHERE {FILED}
GROUP BY agency_code
HAVING n_filed != 0
"""


Counts = dict[str, Any]


def leaf_counts(
    client: Client,
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    *,
    as_of: datetime | None = None,
    rule_set: RuleSet | None = None,
    read: Read | None = None,
) -> dict[str, tuple[Counts, Counts]]:
    """Per agency code: (dossier counts, feedback counts). Counts add up across agencies
    (numbers sum, procedure sets unite), so any node of the org tree is a sum of leaves.
    `read`: as MetricQuery.run()."""

    def ask(read: Read) -> dict[str, tuple[Counts, Counts]]:
        where, params = scope_params(period, now, agencies, as_of, rule_set or rules.get())
        t = params["judged_at"]
        out: dict[str, tuple[Counts, Counts]] = {}
        if read.counts and as_of is None and day_split("finished", period, now, params) is not None:
            dossier_sql = _by_day(where, params, read, period, now)
        else:
            dossier_sql = _by_item(where, read, period, t)
        f_prune = prune_clause("filed", period.start, period.end, t)
        f_sql = _FEEDBACK_SQL.replace(
            "{rows}", feedback_rows(where, read=read, prune=f_prune, agencies=where)
        )
        # independent reads: side by side when the client is a pool (core/storage/pool.py)
        *dossier_rows, feedback = run_all(
            client,
            [
                functools.partial(named_rows, client, query, params)
                for query in [*dossier_sql, f_sql]
            ],
        )
        for rows in dossier_rows:
            for row in rows:
                row.pop("procs", None)
                code = row.pop("agency_code")
                if not any(v for k, v in row.items() if k != "watermark"):
                    continue  # nothing of this agency in this read
                dossiers, _ = out.setdefault(code, ({}, {}))
                _add(dossiers, row)
        for row in feedback:
            code = row.pop("agency_code")
            out[code] = (out.get(code, ({}, {}))[0], row)
        return out

    return consistently(client, as_of, read, ask)


def _by_item(where: str, read: Read, period: Period, t: datetime) -> list[str]:
    """The dossier counts from the facts, a row per dossier (as of an instant; a period with
    no whole day before the judging one)."""
    queries = []
    for reads, sql in _DOSSIER_PARTS.items():
        prune = prune_clause(reads, period.start, period.end, t)
        then = [_DOSSIER_ROW]
        if reads == "finished_or_open":
            rows = judged_dossiers(
                where, SINGLE_T, read=read, prune=prune, agencies=where, then=then
            )
        else:  # no judgment needed: skip the timeliness of a year of intake
            rows = plain_dossiers(
                where, SINGLE_T, read=read, prune=prune, agencies=where, then=then
            )
        queries.append(sql.replace("{source}", rows))
    return queries


# --- the same counts from the day counts (core/figures/days.py) ----------------------------
# Each count is summed over the day counts of the period's whole days before the cut (`days`
# rows: a row per day and kind of dossier, `sign` the number of them) and over the facts from the
# cut on and the delta's correction (`items` rows, a row per dossier version). What only the
# facts can answer is read from them alone: the dossiers still open at the judging instant, and
# the events of dossiers paid or received in the period but neither finished in it nor open at
# its end (ended before it: partitions before the period's first month).

_OPEN_SQL = """
SELECT agency_code,
    sum(sign) AS n_open_end,
    sumIf(sign, NOT overdue) AS n_open_ok,
    sumIf(sign, last_rating.2 = 'unsatisfied') AS n_unsatisfied,
    sum(sign * event_count) AS events,
    maxIf(last_ingested_at, sign > 0) AS watermark
FROM ({rows})
GROUP BY agency_code
"""
_EXTRA_EVENTS = """
SELECT agency_code,
    sumIf(sign * event_count, extra) AS events,
    maxIf(last_ingested_at, sign > 0 AND extra) AS watermark
FROM ({source})
GROUP BY agency_code
"""
_EXTRA = Layer("(received_in OR paid_in) AND NOT finished AND NOT open_end AS extra")
_EMPTY_MAP = "(CAST([] AS Array(String)), CAST([] AS Array(Int64)))"


# What the index takes from the day counts and from the facts since the cut, every column in
# each branch of one query (core/figures/days.py): one scan of the day counts for all six
# anchors and one read per kind of facts, instead of a query (and a plan) per count.
_COUNT_COLUMNS = (
    "n_finished", "n_finished_ok", "n_paper", "n_paper_e", "n_unsatisfied", "events",
    "n_received", "n_received_online_e", "n_paid", "n_paid_online", "n_digitized",
)  # fmt: skip
_NO_WATERMARK = "toDateTime64(0, 3, 'UTC')"


def _branch(source: str, columns: dict[str, str], where: str = "1", grouped: bool = False) -> str:
    """One branch of the index's day-count query: `columns` (name -> SQL over `source`'s rows,
    aggregates per agency when `grouped`), every other count 0, no procedure."""
    sums = ", ".join(f"toInt64({columns.get(c, '0')}) AS {c}" for c in _COUNT_COLUMNS)
    rest = ", ".join(
        f"{columns.get(c, default)} AS {c}"
        for c, default in (("watermark", _NO_WATERMARK), ("o", _EMPTY_MAP), ("p", _EMPTY_MAP))
    )
    group = " GROUP BY agency_code" if grouped else ""
    return f"SELECT agency_code, {sums}, {rest} FROM ({source}) WHERE {where}{group}"


def _online(condition: str, count: str) -> str:
    """A procedure's (code, count) pair where `condition` holds, else none."""
    return f"if({condition}, ([toString(procedure_code)], [toInt64({count})]), {_EMPTY_MAP})"


# The day counts of every anchor the index reads: the same rows and rules as days.day_rows (a
# dossier with a due date, the withdrawn rule; the finished judgment made from the stored
# flags), summed per agency, anchor and procedure first, so the procedure maps below are built
# from a few thousand rows, not one per day count.
_DAYS_SOURCE = f"""
SELECT agency_code, anchor, procedure_code,
    sum(n) AS cnt,
    sumIf(n, NOT {days.LATE}) AS ok,
    sumIf(n, paper_result_required = 1) AS paper,
    sumIf(n, paper_result_required = 1 AND e_result = 1) AS paper_e,
    sumIf(n, unsatisfied = 1) AS unsatisfied_n,
    sum(events) AS events_n,
    maxIf(watermark, n > 0) AS watermark_n,
    sumIf(n, channel = 'online' AND (paper_result_required = 0 OR e_result = 1)) AS online_e,
    sumIf(n, paid_amount_positive > 0) AS paid_positive,
    sumIf(n, paid_online = 1) AS paid_online_n,
    -- digitised by the judging instant: a day count knows the day only, so a dossier
    -- digitised on the cut day or later is taken from the facts
    sumIf(n, addDays(day, digitized_lag) < {{cut_day:Date}}) AS digitized_n
FROM {{days_table}}
WHERE anchor IN ('finished', 'received', 'paid', 'digitized', 'online_procedure',
                 'paid_online_procedure')
    AND due = 1 AND {days.window("{where}")}
GROUP BY agency_code, anchor, procedure_code
"""

_DAY_COLUMNS = {
    "n_finished": "sumIf(cnt, anchor = 'finished')",
    "n_finished_ok": "sumIf(ok, anchor = 'finished')",
    "n_paper": "sumIf(paper, anchor = 'finished')",
    "n_paper_e": "sumIf(paper_e, anchor = 'finished')",
    "n_unsatisfied": "sumIf(unsatisfied_n, anchor = 'finished')",
    "events": "sumIf(events_n, anchor = 'finished')",
    "watermark": "maxIf(watermark_n, anchor = 'finished')",
    "n_received": "sumIf(cnt, anchor = 'received')",
    "n_received_online_e": "sumIf(online_e, anchor = 'received')",
    "n_paid": "sumIf(paid_positive, anchor = 'paid')",
    "n_paid_online": "sumIf(paid_online_n, anchor = 'paid')",
    "n_digitized": "sumIf(digitized_n, anchor = 'digitized')",
    "o": "sumMapIf(([toString(procedure_code)], [toInt64(cnt)]), anchor = 'online_procedure')",
    "p": "sumMapIf(([toString(procedure_code)], [toInt64(cnt)]), anchor = 'paid_online_procedure')",
}


def _by_day(
    where: str, params: dict[str, Any], read: Read, period: Period, now: datetime
) -> list[str]:
    t = params["judged_at"]
    splits: dict[Reads, Split | None] = {
        k: day_split(k, period, now, params) for k in ("finished", "received", "paid")
    }

    # the three flows share the period and `now`, hence the days (and months) they count
    split = next(s for s in splits.values() if s is not None)
    days_source = _DAYS_SOURCE.replace("{where}", where).replace(
        "{days_table}", days.source(split.months, split.edges)
    )
    branches = [_branch(days_source, _DAY_COLUMNS, grouped=True)]
    digitized_at_t = "digitized_at IS NOT NULL AND digitized_at < t"
    # the facts from the cut on, and the delta's correction: one read for the three flows, each
    # keeping the rows of its own (queries.flow_facts)
    # each flow's rows, decided once per row by a layer of their own: written into every
    # column below instead, the engine would analyse each condition a dozen times over
    sides = Layer(
        f"finished AND {flow_side('finished')} AS fin, "
        f"received_in AND {flow_side('received')} AS rec, "
        f"paid_in AND {flow_side('paid')} AS paid"
    )
    rows = flow_facts(
        {k: s for k, s in splits.items() if s is not None},
        where,
        read=read,
        prunes={k: prune_clause(k, period.start, period.end, t) for k in splits},
        then=[_DOSSIER_ROW, sides],
    )
    if rows:
        fin, rec, paid = "fin", "rec", "paid"

        def kept(condition: str, value: str = "sign") -> str:
            return f"if({condition}, {value}, 0)"

        columns = {
            "n_finished": kept(fin),
            "n_finished_ok": kept(f"{fin} AND timeliness != 'late'"),
            "n_paper": kept(f"{fin} AND paper_result_required = 1"),
            "n_paper_e": kept(f"{fin} AND paper_result_required = 1 AND e_result = 1"),
            "n_unsatisfied": kept(f"{fin} AND last_rating.2 = 'unsatisfied'"),
            "events": kept(fin, "sign * event_count"),
            "watermark": f"if({fin} AND sign > 0, last_ingested_at, {_NO_WATERMARK})",
            "n_received": kept(rec),
            "n_received_online_e": kept(
                f"{rec} AND channel = 'online' AND (paper_result_required = 0 OR e_result = 1)"
            ),
            "n_digitized": kept(f"{rec} AND {digitized_at_t}"),
            "o": _online(f"{rec} AND channel = 'online' AND procedure_code IS NOT NULL", "sign"),
            "n_paid": kept(f"{paid} AND paid_amount > 0"),
            "n_paid_online": kept(f"{paid} AND paid_online = 1"),
            "p": _online(f"{paid} AND paid_online = 1 AND procedure_code IS NOT NULL", "sign"),
        }
        branches.append(_branch(rows, columns, "fin OR rec OR paid"))
    if params["cut"] < t:
        today = (
            f"part_month >= {part_month_of(params['cut']):d} "
            "AND received_at >= {period_start:DateTime64(3, 'UTC')} "
            "AND received_at < {cut:DateTime64(3, 'UTC')} "
            "AND digitized_at >= {cut:DateTime64(3, 'UTC')}"
        )
        # every dossier, the delta's too: its stored row was taken away with the others before
        # the cut, and the day counts left it out
        late = plain_dossiers(
            where, SINGLE_T, read=Read(behind=frozenset()), prune=today, then=[_DOSSIER_ROW]
        )
        branches.append(_branch(late, {"n_digitized": "sign"}, digitized_at_t))
    union = "\nUNION ALL\n".join(branches)
    sums = ", ".join(f"sum({c}) AS {c}" for c in _COUNT_COLUMNS)
    counted = f"""
SELECT agency_code, {", ".join(_COUNT_COLUMNS)}, watermark,
    arrayFilter((c, n) -> n > 0, online.1, online.2) AS n_procs_online,
    arrayFilter((c, n) -> n > 0, paid.1, paid.2) AS n_procs_paid_online
FROM (SELECT agency_code, {sums}, max(watermark) AS watermark, sumMap(o) AS online,
             sumMap(p) AS paid
      FROM ({union}) GROUP BY agency_code)
"""
    queries = [counted]
    open_rows = at_t_dossiers(
        where, read=read, prune=prune_clause("open", period.start, period.end, t), agencies=where
    )
    queries.append(_OPEN_SQL.replace("{rows}", open_rows))
    # received or paid in the period but neither finished in it nor open at its end: ended
    # before it, or with no receipt by the judging instant (partitions from the period's start)
    first, last = part_month_of(period.start), part_month_of(t)
    extra_rows = plain_dossiers(
        where,
        SINGLE_T,
        read=read,
        prune=f"part_month >= {first:d} AND (part_month >= {last:d} "
        "OR end_at < {period_start:DateTime64(3, 'UTC')})",
        agencies=where,
        then=[_DOSSIER_ROW, _EXTRA],
    )
    queries.append(_EXTRA_EVENTS.replace("{source}", extra_rows))
    return queries


def _add(target: Counts, source: Counts) -> None:
    for key, value in source.items():
        if isinstance(value, list):
            target[key] = sorted(set(target.get(key, [])) | set(value))
        elif key == "watermark":
            value = utc(value)
            current = target.get(key)
            target[key] = value if current is None or (value and value > current) else current
        else:
            target[key] = target.get(key, 0) + int(value)


def combine(parts: list[tuple[Counts, Counts]]) -> tuple[Counts, Counts]:
    dossiers: Counts = {}
    feedback: Counts = {}
    for d, f in parts:
        for target, source in ((dossiers, d), (feedback, f)):
            _add(target, {k: v for k, v in source.items() if k != "agency_code"})
    return dossiers, feedback


def compute(
    client: Client,
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    *,
    calendar: WorkingDays,
    procedures: list[ProcedureInfo] | None,
    catalog_version: str = "",
    as_of: datetime | None = None,
    rule_set: RuleSet | None = None,
) -> Index766:
    """The index of one agency scope (already expanded through the org tree)."""
    chosen = rule_set or rules.get()
    leaves = leaf_counts(client, period, now, agencies, as_of=as_of, rule_set=chosen)
    dossiers, feedback = combine(list(leaves.values()))
    return index_for(dossiers, feedback, procedures, period, calendar, chosen, catalog_version)


def index_for(
    dossiers: Counts,
    feedback: Counts,
    procedures: list[ProcedureInfo] | None,
    period: Period,
    calendar: WorkingDays,
    rule_set: RuleSet,
    catalog_version: str = "",
) -> Index766:
    """`procedures`: catalogue entries in scope (valid at the period end), or None when no
    catalogue is loaded (catalogue-based indicators are then missing)."""
    counts = _counts(dossiers, feedback, procedures, period, calendar)
    scores = []
    for indicator in INDICATORS:
        numerator, denominator = counts.get(indicator.id, (None, None))
        scores.append(score(indicator, numerator, denominator, rule_set))
    watermarks = [w for w in (dossiers.get("watermark"), feedback.get("watermark")) if w]
    return Index766(
        scores=scores,
        events=int(dossiers.get("events", 0)) + int(feedback.get("events", 0)),
        watermark=max(watermarks, default=None),
        rule_set=rule_set.id,
        calendar=calendar.version,
        catalog=catalog_version if procedures is not None else "",
        exact=rule_set.rules.points_from == "exact_rate",
    )


# The indicators counted from dossier and feedback events (the rest from the catalogue): an
# index none of these has anything to count in is no data, whatever the catalogue gives.
FROM_EVENTS = frozenset({"2.1", "3.3", "3.6", "4.1", "4.2", "5.2", "5.3", "5.4"})


def _counts(
    dossiers: Counts,
    feedback: Counts,
    procedures: list[ProcedureInfo] | None,
    period: Period,
    calendar: WorkingDays,
) -> dict[str, tuple[int, int]]:
    def n(source: Counts, key: str) -> int:
        return int(source.get(key, 0))

    d, f = dossiers, feedback
    processed = n(d, "n_finished") + n(d, "n_open_end")
    on_time = n(d, "n_finished_ok") + n(d, "n_open_ok")
    counts: dict[str, tuple[int, int]] = {
        "2.1": (on_time, processed),
        "3.3": (n(d, "n_received_online_e"), n(d, "n_received")),
        "3.6": (n(d, "n_paid_online"), n(d, "n_paid")),
        "4.1": (n(d, "n_paper_e"), n(d, "n_paper")),
        "4.2": (n(d, "n_digitized"), n(d, "n_received")),
        "5.2": (n(f, "n_handled_ok"), n(f, "n_filed")),
        "5.3": (n(f, "n_filed") - n(f, "n_not_satisfied"), n(f, "n_filed")),
        # 5.4 = 100% − (% overdue + % unsatisfied), as a ratio over the processed dossiers
        "5.4": (max(0, on_time - n(d, "n_unsatisfied")), processed),
    }
    if procedures is not None:
        counts.update(_catalog_counts(procedures, d, period, calendar))
    return counts


def _catalog_counts(
    procedures: list[ProcedureInfo],
    d: Counts,
    period: Period,
    calendar: WorkingDays,
) -> dict[str, tuple[int, int]]:
    first, last = period.first_day, period.last_day
    in_period = [p for p in procedures if first <= p.decision_date <= last]
    decided_in_time = sum(
        1
        for p in in_period
        if calendar.working_days_between(p.decision_date, p.legal_basis_effective_date) >= 5
    )
    made_public = sum(
        1
        for p in in_period
        if p.public_in_national_db_at is not None
        and calendar.working_days_between(p.decision_date, p.public_in_national_db_at) <= 5
    )
    online = [p for p in procedures if p.online]
    fee = [p for p in procedures if p.fee_bearing]
    with_online_dossier = set(d.get("n_procs_online", []))
    with_online_payment = set(d.get("n_procs_paid_online", []))
    return {
        "1.1": (decided_in_time, len(in_period)),
        "1.2": (made_public, len(in_period)),
        "1.3": (sum(1 for p in procedures if p.parts_complete), len(procedures)),
        "3.1": (len(online), len(procedures)),
        "3.2": (sum(1 for p in online if p.code in with_online_dossier), len(online)),
        "3.5": (sum(1 for p in fee if p.online_payment_integrated), len(fee)),
        "3.5b": (sum(1 for p in fee if p.code in with_online_payment), len(fee)),
    }


def procedures_in_scope(
    catalog: Catalog, tree: OrgTree, codes: set[str]
) -> list[ProcedureInfo] | None:
    """Procedures under the scope's authority: those applicable at a level the scope has. The
    catalogue does not assign procedures to agencies, so a department sees every province-level
    procedure (stated in the answer); None when no catalogue is loaded."""
    if len(catalog) == 0:
        return None
    levels = {tree.level(c) for c in codes if c in tree} or {"province", "district", "commune"}
    return [p for p in catalog if levels & set(p.levels)]
