"""The QĐ 766 index's counts read from the facts, a row per item: the dossier reads (finished or
open, received, paid) and the feedback read."""

from __future__ import annotations

from datetime import datetime

from core.figures.dossier_sql import (
    judged_dossiers,
    plain_dossiers,
)
from core.figures.metric_model import (
    ANSWERED_IN_TIME,
    ANSWERED_LATE,
    FILED,
    T_DAY,
    UNANSWERED,
    Reads,
)
from core.figures.periods import Period
from core.figures.pruning import prune_clause
from core.figures.reads import Read
from core.figures.rows import SINGLE_T, Layer

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

DOSSIER_ROW = Layer(
    """
    end_at IS NOT NULL AND end_at >= period_start AND end_at < t AS finished,
    received_at < t AND (end_at IS NULL OR end_at >= t) AS open_end,
    received_at >= period_start AND received_at < period_end AS received_in,
    paid_at IS NOT NULL AND paid_at >= period_start AND paid_at < t AS paid_in""",
    "due_at IS NOT NULL",
)

FEEDBACK_SQL = f"""
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


def by_item(where: str, read: Read, period: Period, t: datetime) -> list[str]:
    """The dossier counts from the facts, a row per dossier (as of an instant; a period with
    no whole day before the judging one)."""
    queries = []
    for reads, sql in _DOSSIER_PARTS.items():
        prune = prune_clause(reads, period.start, period.end, t)
        then = [DOSSIER_ROW]
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
