"""The §2 judgment of a dossier in SQL: at its end, open at an instant `t`, the apology rule's
columns, and whether the rule set counts it at all."""

from __future__ import annotations

from core.figures.sql_params import first_index, working_day
from core.zone import TZ

# The §2 judgment of a dossier finished before `t`: made from its end, when its facts were
# folded (the day comparisons included), under the rule parameters.
END_TIMELINESS = (
    "multiIf(toUInt64(end_requests) > 1 AND {multi_supplement_late:UInt8} = 1, 'late', "
    "if({lenient_boundary:UInt8} = 1, end_late_day, end_late), 'late', "
    "end_early_day, 'early', 'on_time')"
)


def open_clock(t: str) -> str:
    """SELECT-list items judging a dossier still open at `t` (a column or a parameter) from its
    supplement times, reference §2: `open_requests` made by `t`, and `open_clock`, the instant its
    clock shows at `t`. The clock runs to `t`, less the completed pauses (the k-th request pairs
    with the k-th resubmission), or stops at a pending request."""
    return f"""length(arrayFilter(x -> x <= {t}, supplement_requests)) AS open_requests,
    least(open_requests, length(arrayFilter(x -> x <= {t}, supplement_receipts)))
        AS open_resumed,
    if(open_requests = 0, {t},
       subtractMilliseconds(
           if(open_requests > open_resumed, supplement_requests[open_resumed + 1], {t}),
           arraySum(arrayMap(i -> greatest(0, dateDiff('millisecond', supplement_requests[i],
                                                       supplement_receipts[i])),
                             range(1, open_resumed + 1))))) AS open_clock"""


# Whether a dossier open at `t` (the open_clock columns) is overdue there: a second supplement
# request when the rules make that late, or its clock past the due date (by the day, leniently).
OPEN_LATE = (
    "(open_requests > 1 AND {multi_supplement_late:UInt8} = 1 "
    "OR if({lenient_boundary:UInt8} = 1, "
    f"toDate(open_clock, '{TZ}') > toDate(due_at, '{TZ}'), open_clock > due_at))"
)

# The §2 judgment at `t`: a dossier finished before `t` judged at its end, one still open at `t`
# judged at `t`.
DOSSIER_JUDGED = f"""
    end_at IS NOT NULL AND end_at < t AS finished_by_t,
    if(finished_by_t, end_at, t) AS judged_at,
    {open_clock("t")},
    if(finished_by_t, toUInt64(end_requests), open_requests) AS requests,
    if(finished_by_t, end_effective_at, open_clock) AS effective_at,
    multiIf(due_at IS NULL, NULL,
            finished_by_t, {END_TIMELINESS},
            {OPEN_LATE}, 'late',
            toDate(effective_at, '{TZ}') < toDate(due_at, '{TZ}'), 'early',
            'on_time') AS timeliness"""

# The same judgment of a population that finished before `t` (Metric.finished_only): the
# open-dossier clock above is never read there, and planning it was most of such a figure's cost.
FINISHED_JUDGED = f"""
    toUInt8(1) AS finished_by_t,
    end_at AS judged_at,
    toUInt64(end_requests) AS requests,
    end_effective_at AS effective_at,
    if(due_at IS NULL, NULL, {END_TIMELINESS}) AS timeliness"""

# What only the apology figures read: planning these columns is most of a query's fixed cost.
APOLOGY_JUDGED = f"""
    -- Apology (KH 7860 B.4.1): issued no later than N (working) days before the original due
    -- date; more reschedules than the rule allows is a violation.
    toDate(due_at, '{TZ}') AS due_day,
    {first_index("due_day")} AS due_first,
    if({{apology_unit_working:UInt8}} = 1,
       {working_day("due_day", "due_first", "-{apology_days_before_due:Int32}")},
       subtractDays(due_day, {{apology_days_before_due:Int32}})) AS apology_deadline_day,
    apologies >= 1 AND apologies <= {{max_reschedules:UInt8}}
        AND toDate(first_apology_at, '{TZ}') <= apology_deadline_day AS apology_ok,
    -- The original due date missed (reference §2, the apology population of rule sets from
    -- reference@2): the clock, at the end or at `t` for an open dossier, past due_at by the
    -- rule set's boundary; the §2 lateness without the second-supplement rule.
    if({{lenient_boundary:UInt8}} = 1, toDate(effective_at, '{TZ}') > toDate(due_at, '{TZ}'),
       effective_at > due_at) AS due_missed,
    -- The leading indicator's horizon: the N-th working day after the judging day.
    toDate(subtractMilliseconds(t, 1), '{TZ}') AS t_day,
    {first_index("addDays(t_day, 1)")} AS horizon_first,
    {working_day("t_day", "horizon_first", "{leading_working_days:Int32} - 1")} AS horizon_day"""


# Whether a dossier counts under the rule set: a rule set may leave withdrawn dossiers out of
# every dossier figure.
COUNTED = (
    "NOT ({withdrawn_finishes:UInt8} = 0 "
    "AND withdrawn_at IS NOT NULL AND resolved_at IS NULL AND returned_at IS NULL)"
)
