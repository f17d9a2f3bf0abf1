"""Flow figures over whole past days, from the day counts (`dossier_days`, migration 0020).

A flow figure (finished, received or paid in the period) counts each dossier on the day of its
anchor, and everything it asks of a dossier finished by then was decided when the facts were
folded: the §2 judgment at its end, its e-result, its channel, whether its first payment was
online. So the current facts, counted per local day, agency, domain, level and those flags, answer
it for every day that has ended, and a year of the province is a few hundred thousand rows
instead of a row per dossier. The rule parameters still apply at read time: the counts keep
each flag the rules choose between (exact or day-level lateness, a second supplement request,
withdrawals).

A question then reads (core/figures/metric_sql.MetricSQL.sql):
- the day counts for the days of the period before `cut` (the day the figure is judged on: today
  for a live figure, the day after the period otherwise);
- the facts of the dossiers whose anchor lies from `cut` on (today's, for a live figure);
- for the dossiers the refolder has not caught up with (the delta): their stored facts before
  `cut` taken away again, their fold from the parts added.
The property test (tests/test_fast_figures_property.py) holds this to the plain fold.
"""

from __future__ import annotations

from core.figures.metric_model import Reads
from core.zone import TZ

# Which anchor each flow population is counted on.
DAY_ANCHORS: dict[Reads, str] = {"finished": "end_at", "received": "received_at", "paid": "paid_at"}

# The figures the day counts answer, with the day-count column a summed numerator adds up
# (None: the numerator counts dossiers). The others read what the counts do not keep: digitised
# by the judging instant, the apology rules, open dossiers.
DAY_METRICS: dict[str, str | None] = {
    "on_time_rate": None,
    "early_rate": None,
    "late_rate": None,
    "avg_processing_minutes": "minutes",
    "e_result_share": None,
    "online_share": None,
    "direct_share": None,
    "postal_share": None,
    "online_payment_share": None,
    "full_online_share": None,
}

# The day counts' rows a figure reads where they are not its anchor's: a population that is a
# set of procedures (the catalogue's, valid at the period's end, as a parameter) reads the
# receipts per procedure (migration 0032); the `received` rows keep no procedure.
DAY_ANCHOR_ROWS: dict[str, str] = {"full_online_share": "received_procedure"}

_DT = "DateTime64(3, 'UTC')"

# A finished dossier's lateness from its stored flags under the rule parameters, as the facts'
# judgment decides it (judgment.DOSSIER_JUDGED): a second supplement request, or late by the
# exact instant or by the day.
LATE = (
    "(multi_supplement = 1 AND {multi_supplement_late:UInt8} = 1 "
    "OR if({lenient_boundary:UInt8} = 1, late_day, late) = 1)"
)


def source(months: bool, edges: bool = True) -> str:
    """The day counts a question reads, as a table. With `months`: the month counts (migration
    0026) for the months that lie whole in the question's days (parameters first_month,
    cut_month: day_split), and with `edges` the day counts for the days around them. A month
    row's `day` is the month's first day, inside the question's days, and its columns mean for
    such a question what the day counts' mean (0026), so every reader of the day counts reads
    them alike. (A union of both tables costs the engine more to plan than a month of day
    counts costs to read: a question of whole months reads the months alone.)"""
    if not months:
        return "dossier_days"
    if not edges:
        return "dossier_months"
    return (
        "(SELECT * FROM dossier_months "
        "WHERE day >= {first_month:Date} AND day < {cut_month:Date} "
        "UNION ALL SELECT * FROM dossier_days "
        "WHERE day < {first_month:Date} OR day >= {cut_month:Date})"
    )


def window(where: str) -> str:
    """The day counts a question reads: the period's days before `cut_day`, narrowed by
    `where`, less what the rule set leaves out (withdrawn-only dossiers)."""
    return (
        f"day >= {{first_day:Date}} AND day < {{cut_day:Date}} AND {where} "
        "AND NOT ({withdrawn_finishes:UInt8} = 0 AND withdrawn_only = 1)"
    )


def day_rows(
    kind: Reads,
    where: str,
    bucket: str | None,
    anchor_row: str = "",
    months: bool = False,
    edges: bool = True,
) -> str:
    """The day counts of the period's days before `cut`, shaped like the facts rows a figure
    reads: the anchor is a day's first instant, `sign` the count, and the finished judgment
    made from the stored flags under the rule parameters exactly as the facts' is
    (judgment.DOSSIER_JUDGED for a dossier finished by `t`).

    Every day read lies inside the period and before the judging instant, so the population's
    time conditions hold alike for all of them: unless the figure is grouped by `bucket` ("day"
    or "month"), every row gets the period's first instant as its anchor, a constant the engine
    evaluates once instead of a conversion per row.

    `anchor_row` reads the rows of another anchor counted on the same day as `kind` (the
    digitized and procedure rows of core/figures/index766.py, DAY_ANCHOR_ROWS). `months`,
    `edges`: read whole months from the month counts (source), never for a figure by day.

    Parameters: first_day, cut_day (first_month, cut_month with `months`), withdrawn_finishes,
    multi_supplement_late, lenient_boundary, and those of `where` (agency, domain, level)."""
    anchor = DAY_ANCHORS[kind]
    instant = {
        "day": f"toDateTime64(day, 3, '{TZ}')",
        # a month that began before the period is counted from the period's first instant
        "month": f"greatest(toDateTime64(toStartOfMonth(day), 3, '{TZ}'), {{period_start:{_DT}}})",
    }.get(bucket or "", f"{{period_start:{_DT}}}")
    return f"""
SELECT agency_code, domain_code, level, channel, {instant} AS {anchor},
    if(due = 1, {anchor}, NULL) AS due_at, paper_result_required, e_result, paid_online,
    toUInt64(paid_amount_positive) AS paid_amount, procedure_code, day AS anchor_day, digitized_lag,
    (toDateTime64(0, 3, 'UTC'), if(unsatisfied = 1, 'unsatisfied', '')) AS last_rating,
    multiIf(due = 0, NULL, {LATE}, 'late', early_day = 1, 'early', 'on_time') AS timeliness,
    end_lead, n AS sign, events, minutes, watermark AS last_ingested_at
FROM {source(months and bucket != "day", edges)}
WHERE anchor = '{anchor_row or kind}' AND {window(where)}
"""
