"""The QĐ 766 index's dossier counts from the day counts (core/figures/days.py) and the facts
since the cut, in one query per kind of read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.figures import days
from core.figures.dossier_sql import (
    at_t_dossiers,
    flow_facts,
    flow_side,
    plain_dossiers,
)
from core.figures.index766_sql import DOSSIER_ROW
from core.figures.metric_model import Reads
from core.figures.periods import Period
from core.figures.pruning import Split, day_split, part_month_of, prune_clause
from core.figures.reads import Read
from core.figures.rows import SINGLE_T, Layer

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


def by_day(
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
    # keeping the rows of its own (dossier_sql.flow_facts)
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
        then=[DOSSIER_ROW, sides],
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
            where, SINGLE_T, read=Read(behind=frozenset()), prune=today, then=[DOSSIER_ROW]
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
        then=[DOSSIER_ROW, _EXTRA],
    )
    queries.append(_EXTRA_EVENTS.replace("{source}", extra_rows))
    return queries
