"""The oracle of tests/test_fast_figures_property.py: every figure as a plain fold of raw events.

A frozen copy of the figure SQL as it stood at commit eeced79 (services/metrics/folds.py,
queries.py, definitions.py, report_ii06a.py, index766.py), always on that commit's as-of path:
each dossier and feedback item is folded from the `events` rows with ingested_at <= as_of (a far
future instant for "everything stored"), and nothing else is read: no state table, no view, no
facts table. It imports nothing from services.metrics on purpose, so rewriting those modules
cannot move the oracle along with them; a rule set comes in as an argument and only its `rules`
fields are read, periods and filters only for their attributes.

Keep the SQL text byte-for-byte where it was copied (only the watermark columns, which no
function returns, are left out): a difference between this file and the fast path is a change of
what the figures mean, never of how they are computed. A rule added since (the section after the
catalogue) is written here from the metrics reference, not copied from the fast path.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from core.reference.calendar import WorkingCalendar

TZ = "Asia/Ho_Chi_Minh"
VN = ZoneInfo(TZ)
# "Everything stored so far" is the as-of fold at the last instant DateTime64(3) can name.
FAR_FUTURE = datetime(2299, 12, 30, tzinfo=UTC)

_DT = "DateTime64(3, 'UTC')"
_EPOCH = "(toDateTime64(0, 3, 'UTC'), '')"


class _Period(Protocol):
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...


class _Filters(Protocol):
    @property
    def agencies(self) -> tuple[str, ...]: ...
    @property
    def domains(self) -> tuple[str, ...]: ...
    @property
    def levels(self) -> tuple[str, ...]: ...


# --- folds.py at eeced79: the as-of fold --------------------------------------------------------

DOSSIER_FOLD = f"""
SELECT
    agency_code,
    entity_id AS dossier_id,
    max(e.procedure_code) AS procedure_code,
    max(e.domain_code) AS domain_code,
    max(e.level) AS level,
    max(if(e.type = 'dossier.received', e.channel, NULL)) AS channel,
    min(e.received_at) AS received_at,
    min(e.due_at) AS due_at,
    max(e.fee_required) AS fee_required,
    max(e.paper_result_required) AS paper_result_required,
    arraySort(groupUniqArrayIf((e.occurred_at, e.event_id),
        e.type = 'dossier.supplement_requested')) AS supplement_requests,
    arraySort(groupUniqArrayIf((e.occurred_at, e.event_id),
        e.type = 'dossier.supplement_received')) AS supplement_receipts,
    min(if(e.type = 'dossier.resolved', e.occurred_at, NULL)) AS resolved_at,
    max(e.outcome) AS outcome,
    max(e.e_result) AS e_result,
    min(if(e.type = 'dossier.returned', e.occurred_at, NULL)) AS returned_at,
    min(if(e.type = 'dossier.withdrawn', e.occurred_at, NULL)) AS withdrawn_at,
    min(if(e.type = 'dossier.late', e.occurred_at, NULL)) AS late_notice_at,
    arraySort(groupUniqArrayIf((e.occurred_at, assumeNotNull(e.new_due_at), e.event_id),
        e.type = 'dossier.apology_issued')) AS apologies,
    arraySort(groupUniqArrayIf(
        (e.occurred_at, toString(assumeNotNull(e.channel)), assumeNotNull(e.amount_vnd),
         e.event_id),
        e.type = 'dossier.paid')) AS payments,
    min(if(e.type = 'dossier.digitized', e.occurred_at, NULL)) AS digitized_at,
    max(if(e.type = 'dossier.rated', (e.occurred_at, toString(assumeNotNull(e.rating))),
        {_EPOCH})) AS last_rating,
    uniqExact(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    max(e.ingested_at) AS last_ingested_at
FROM events AS e
WHERE entity = 'dossier' AND e.ingested_at <= {{as_of:{_DT}}}
GROUP BY agency_code, entity_id
"""

FEEDBACK_FOLD = f"""
SELECT
    agency_code,
    entity_id AS feedback_id,
    min(e.filed_at) AS filed_at,
    max(e.topic) AS topic,
    min(e.due_at) AS due_at,
    min(if(e.type = 'feedback.answered', e.occurred_at, NULL)) AS answered_at,
    min(if(e.type = 'feedback.published', e.occurred_at, NULL)) AS published_at,
    max(if(e.type = 'feedback.rated', (e.occurred_at, toString(assumeNotNull(e.rating))),
        {_EPOCH})) AS last_rating,
    uniqExact(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    max(e.ingested_at) AS last_ingested_at
FROM events AS e
WHERE entity = 'feedback' AND e.ingested_at <= {{as_of:{_DT}}}
GROUP BY agency_code, entity_id
"""

# --- queries.py at eeced79: one judged row per item ---------------------------------------------

_DOSSIER_ROWS = f"""
SELECT
    agency_code, dossier_id, domain_code, level, channel, received_at, due_at,
    coalesce(resolved_at, returned_at,
             if({{withdrawn_finishes:UInt8}} = 1, withdrawn_at, NULL)) AS end_at,
    if(length(payments) > 0, payments[1].1, NULL) AS paid_at,
    arrayExists(p -> p.2 = 'online', payments) AS paid_online,
    digitized_at, supplement_requests, supplement_receipts, event_count, last_ingested_at,
    procedure_code, fee_required, paper_result_required, e_result, payments, apologies,
    last_rating, late_notice_at,
    {{period_start:{_DT}}} AS period_start,
    {{period_end:{_DT}}} AS period_end,
    t
FROM {{source}} {{t_source}}
WHERE {{filters}}
    -- a rule set may leave withdrawn dossiers out of every dossier figure instead
    AND NOT ({{withdrawn_finishes:UInt8}} = 0 AND withdrawn_at IS NOT NULL
             AND resolved_at IS NULL AND returned_at IS NULL)
"""

_WD = "{working_days:Array(Date)}"


def _working_day(anchor: str, offset: str) -> str:
    first = f"arrayFirstIndex(x -> {anchor}, {_WD})"
    return (
        f"if({first} = 0 OR {first} + ({offset}) NOT BETWEEN 1 AND length({_WD}), NULL, "
        f"{_WD}[{first} + ({offset})])"
    )


_HORIZON_DAY = _working_day(
    f"x > toDate(subtractMilliseconds(t, 1), '{TZ}')", "{leading_working_days:Int32} - 1"
)

_DOSSIER_JUDGED = f"""
SELECT *,
    if(end_at IS NOT NULL AND end_at < t, end_at, t) AS judged_at,
    arrayFilter(x -> x.1 <= judged_at, supplement_requests) AS req,
    arrayFilter(x -> x.1 <= judged_at, supplement_receipts) AS rec,
    least(length(req), length(rec)) AS pairs,
    arraySum(arrayMap(i -> greatest(0, dateDiff('millisecond', req[i].1, rec[i].1)),
                      range(1, pairs + 1))) AS paused_ms,
    if(length(req) > pairs, req[pairs + 1].1, judged_at) AS clock_stop,
    subtractMilliseconds(clock_stop, paused_ms) AS effective_at,
    multiIf(due_at IS NULL, NULL,
            length(req) > 1 AND {{multi_supplement_late:UInt8}} = 1, 'late',
            if({{lenient_boundary:UInt8}} = 1,
               toDate(effective_at, '{TZ}') > toDate(due_at, '{TZ}'),
               effective_at > due_at), 'late',
            toDate(effective_at, '{TZ}') < toDate(due_at, '{TZ}'), 'early',
            'on_time') AS timeliness,
    -- Apology (KH 7860 B.4.1): issued no later than N (working) days before the original due
    -- date; more reschedules than the rule allows is a violation.
    toDate(due_at, '{TZ}') AS due_day,
    if({{apology_unit_working:UInt8}} = 1,
       {_working_day("x >= due_day", "-{apology_days_before_due:Int32}")},
       subtractDays(due_day, {{apology_days_before_due:Int32}})) AS apology_deadline_day,
    if(length(apologies) > 0, apologies[1].1, NULL) AS first_apology_at,
    length(apologies) >= 1 AND length(apologies) <= {{max_reschedules:UInt8}}
        AND toDate(first_apology_at, '{TZ}') <= apology_deadline_day AS apology_ok,
    -- The leading indicator's horizon: the N-th working day after the judging day.
    {_HORIZON_DAY} AS horizon_day
FROM ({{rows}})
"""

_FEEDBACK_ROWS = f"""
SELECT agency_code, feedback_id, topic, filed_at, due_at, answered_at, published_at,
    event_count, last_ingested_at, last_rating,
    -- Reference §5: answer within N working days of filing (holidays skipped); a rule set may
    -- trust the source system's due_at instead.
    if({{feedback_deadline_source:UInt8}} = 1, toDate(due_at, '{TZ}'),
       {_working_day(f"x > toDate(filed_at, '{TZ}')", "{feedback_working_days:Int32} - 1")})
       AS deadline_day,
    {{period_start:{_DT}}} AS period_start,
    {{period_end:{_DT}}} AS period_end,
    {{judged_at:{_DT}}} AS t
FROM {{source}}
WHERE {{filters}}
"""

SINGLE_T = f"ARRAY JOIN [{{judged_at:{_DT}}}] AS t"
_GROUP_COLUMNS = {"agency": "agency_code", "domain": "domain_code", "level": "level"}


def _judged_dossiers(where: str, t_source: str) -> str:
    rows = (
        _DOSSIER_ROWS.replace("{filters}", where)
        .replace("{t_source}", t_source)
        .replace("{source}", f"({DOSSIER_FOLD})")
    )
    return _DOSSIER_JUDGED.replace("{rows}", rows)


def _feedback_rows(where: str) -> str:
    return _FEEDBACK_ROWS.replace("{filters}", where).replace("{source}", f"({FEEDBACK_FOLD})")


@cache
def _working_days() -> list[date]:
    cal = WorkingCalendar.load()
    return [d.day for year in cal.years for d in cal.days(year) if d.is_working]


def _rule_params(rule_set: Any) -> dict[str, Any]:
    """RuleSet.sql_params at eeced79, read from the rule set's fields, plus the calendar."""
    r = rule_set.rules
    return {
        "multi_supplement_late": int(r.multi_supplement_late),
        "lenient_boundary": int(r.on_time_boundary == "end_of_due_date"),
        "withdrawn_finishes": int(r.withdrawn_counts_as_finished),
        "apology_unit_working": int(r.apology_day_unit == "working"),
        "apology_days_before_due": r.apology_days_before_due,
        "max_reschedules": r.max_reschedules,
        "leading_working_days": r.leading_indicator_working_days,
        "feedback_working_days": r.feedback_answer_working_days,
        "feedback_deadline_source": int(r.feedback_deadline == "source_due_at"),
        "working_days": _working_days(),
    }


# --- definitions.py at eeced79: the catalogue -----------------------------------------------------

RECEIVED = "received_at >= period_start AND received_at < period_end"
FINISHED = "end_at IS NOT NULL AND end_at >= period_start AND end_at < t AND due_at IS NOT NULL"
OPEN_AT_T = "received_at < t AND (end_at IS NULL OR end_at >= t) AND due_at IS NOT NULL"
PAID = "paid_at IS NOT NULL AND paid_at >= period_start AND paid_at < t"
FILED = "filed_at >= period_start AND filed_at < period_end AND deadline_day IS NOT NULL"
T_DAY = f"toDate(subtractMilliseconds(t, 1), '{TZ}')"
ANSWERED_IN_TIME = f"answered_at < t AND toDate(answered_at, '{TZ}') <= deadline_day"
ANSWERED_LATE = f"answered_at < t AND toDate(answered_at, '{TZ}') > deadline_day"
UNANSWERED = "(answered_at IS NULL OR answered_at >= t)"
LATE_AT_T = "timeliness = 'late'"


class Metric(NamedTuple):
    entity: str
    population: str
    numerator: str
    anchor: str | None  # None: a stock figure, judged at the end of each day/month bucket
    summed: str | None = None  # an average: the numerator sums this over its items


METRICS: dict[str, Metric] = {
    "on_time_rate": Metric("dossier", FINISHED, "timeliness IN ('early', 'on_time')", "end_at"),
    "early_rate": Metric("dossier", FINISHED, "timeliness = 'early'", "end_at"),
    "late_rate": Metric("dossier", FINISHED, "timeliness = 'late'", "end_at"),
    "avg_processing_minutes": Metric(
        "dossier",
        FINISHED,
        "1",
        "end_at",
        summed="greatest(0, dateDiff('minute', received_at, effective_at))",
    ),
    "open_overdue_rate": Metric("dossier", OPEN_AT_T, "timeliness = 'late'", None),
    "open_within_deadline_rate": Metric(
        "dossier", OPEN_AT_T, "timeliness IN ('early', 'on_time')", None
    ),
    "apology_compliance": Metric(
        "dossier", f"({FINISHED} OR {OPEN_AT_T}) AND {LATE_AT_T}", "apology_ok", None
    ),
    "due_soon_without_apology": Metric(
        "dossier",
        f"{OPEN_AT_T} AND NOT {LATE_AT_T}",
        "due_day <= horizon_day AND length(apologies) = 0",
        None,
    ),
    "online_share": Metric("dossier", RECEIVED, "channel = 'online'", "received_at"),
    "direct_share": Metric("dossier", RECEIVED, "channel = 'direct'", "received_at"),
    "postal_share": Metric("dossier", RECEIVED, "channel = 'postal'", "received_at"),
    "online_payment_share": Metric("dossier", PAID, "paid_online = 1", "paid_at"),
    "digitized_share": Metric(
        "dossier", RECEIVED, "digitized_at IS NOT NULL AND digitized_at < t", "received_at"
    ),
    "e_result_share": Metric(
        "dossier", f"{FINISHED} AND paper_result_required = 1", "e_result = 1", "end_at"
    ),
    "full_online_share": Metric(
        "dossier",
        f"{RECEIVED} AND has({{full_online_eligible:Array(String)}}, procedure_code)",
        "channel = 'online'",
        "received_at",
    ),
    "feedback_answered_on_time": Metric("feedback", FILED, ANSWERED_IN_TIME, "filed_at"),
    "feedback_answered_late": Metric("feedback", FILED, ANSWERED_LATE, "filed_at"),
    "feedback_open": Metric("feedback", FILED, UNANSWERED, "filed_at"),
    "feedback_open_overdue": Metric(
        "feedback", FILED, f"{UNANSWERED} AND {T_DAY} > deadline_day", "filed_at"
    ),
    "feedback_published_share": Metric(
        "feedback", f"{FILED} AND answered_at < t", "published_at < t", "filed_at"
    ),
}


# --- rules added after eeced79, from the metrics reference ----------------------------------------

# Reference §2 (issue 15, reference@2): apology compliance counts the dossiers whose original due
# date passed before they finished, or that are open past it. "Passed" is the §2 comparison of the
# clock (supplement pauses deducted) with due_at, at the rule set's boundary, and nothing else: a
# second supplement request alone misses no date. The leading indicator counts the open dossiers
# whose due date has not passed yet, those not (yet) in that population.
_DUE_MISSED = (
    "if({lenient_boundary:UInt8} = 1, "
    f"toDate(effective_at, '{TZ}') > toDate(due_at, '{TZ}'), effective_at > due_at)"
)
_MISSED_DUE_DATE: dict[str, Metric] = {
    "apology_compliance": Metric(
        "dossier", f"({FINISHED} OR {OPEN_AT_T}) AND {_DUE_MISSED}", "apology_ok", None
    ),
    "due_soon_without_apology": Metric(
        "dossier",
        f"{OPEN_AT_T} AND NOT {_DUE_MISSED}",
        "due_day <= horizon_day AND length(apologies) = 0",
        None,
    ),
}


def definition(metric_id: str, rule_set: Any) -> Metric:
    """The figure under `rule_set`: eeced79's, but for the rules added since."""
    if getattr(rule_set.rules, "apology_population", "late") == "missed_due_date":
        return _MISSED_DUE_DATE.get(metric_id, METRICS[metric_id])
    return METRICS[metric_id]


# --- MetricQuery.sql / run at eeced79 -------------------------------------------------------------


def metric(
    client: Client,
    metric_id: str,
    period: _Period,
    now: datetime,
    filters: _Filters,
    group_by: str | None,
    as_of: datetime | None,
    rule_set: Any,
    full_online_eligible: tuple[str, ...] = (),
    *,
    with_events: bool = False,
) -> list[tuple[Any, ...]]:
    """(group, numerator, denominator) rows of one figure, ordered by group; with_events: and
    the distinct events behind each row's items (MetricRow.events)."""
    m = definition(metric_id, rule_set)
    params: dict[str, Any] = {
        "period_start": period.start,
        "period_end": period.end,
        "judged_at": min(period.end, now),
        "full_online_eligible": list(full_online_eligible),
        "as_of": as_of or FAR_FUTURE,
        **_rule_params(rule_set),
    }
    clauses = ["1"]
    if filters.agencies:
        clauses.append("agency_code IN {agencies:Array(String)}")
        params["agencies"] = list(filters.agencies)
    for name, values in (("domain", filters.domains), ("level", filters.levels)):
        if not values:
            continue
        if m.entity != "dossier":
            raise ValueError(f"feedback has no {name}")
        clauses.append(f"{_GROUP_COLUMNS[name]} IN {{{name}s:Array(String)}}")
        params[f"{name}s"] = list(values)
    where = " AND ".join(clauses)
    if m.anchor is None and group_by in ("day", "month"):
        params["bucket_ends"] = _bucket_ends(period, now, group_by)
        t_source = "ARRAY JOIN {bucket_ends:Array(DateTime64(3, 'UTC'))} AS t"
    else:
        t_source = SINGLE_T
    source = _judged_dossiers(where, t_source) if m.entity == "dossier" else _feedback_rows(where)
    numerator = (
        f"countIf({m.numerator})"
        if m.summed is None
        else f"toInt64(sumIf({m.summed}, {m.numerator}))"
    )
    sql = (
        f"SELECT {_group_expr(m, group_by)} AS grp, {numerator} AS numerator, "
        f"count() AS denominator, sum(event_count) AS events "
        f"FROM ({source}) WHERE {m.population} "
        f"GROUP BY grp ORDER BY grp"
    )
    rows = client.query(sql, parameters=params).result_rows
    return [
        (None if g is None else str(g), int(n), int(d), *([int(e)] if with_events else []))
        for g, n, d, e in rows
    ]


def _group_expr(m: Metric, group_by: str | None) -> str:
    if group_by is None:
        return "NULL"
    if group_by in _GROUP_COLUMNS:
        if m.entity != "dossier" and group_by != "agency":
            raise ValueError(f"feedback cannot be grouped by {group_by}")
        return f"toString({_GROUP_COLUMNS[group_by]})"
    anchor = m.anchor or "subtractMilliseconds(t, 1)"
    bucket = "toDate" if group_by == "day" else "toStartOfMonth"
    return f"toString({bucket}({anchor}, '{TZ}'))"


def _bucket_ends(period: _Period, now: datetime, group_by: str) -> list[datetime]:
    ends: list[datetime] = []
    cursor = period.start.astimezone(VN).date()
    last = (period.end.astimezone(VN) - timedelta(microseconds=1)).date()
    while cursor <= last:
        if group_by == "day":
            nxt = cursor + timedelta(days=1)
        else:
            nxt = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
        end = datetime.combine(nxt, time(), VN).astimezone(UTC)
        ends.append(min(end, period.end, now))
        cursor = nxt
        if ends[-1] >= now:
            break
    return ends


def _scope(
    period: _Period, now: datetime, agencies: tuple[str, ...], as_of: datetime | None, rule_set: Any
) -> tuple[str, dict[str, Any]]:
    """queries.scope_params at eeced79, with the as-of instant always set."""
    params: dict[str, Any] = {
        "period_start": period.start,
        "period_end": period.end,
        "judged_at": min(period.end, now),
        "as_of": as_of or FAR_FUTURE,
        **_rule_params(rule_set),
    }
    where = "1"
    if agencies:
        where = "agency_code IN {agencies:Array(String)}"
        params["agencies"] = list(agencies)
    return where, params


# --- report_ii06a.py at eeced79 -------------------------------------------------------------------

_II06A = """
SELECT agency_code,
    countIf(received_at >= period_start AND received_at < period_end
            AND channel = 'online') AS received_online,
    countIf(received_at >= period_start AND received_at < period_end
            AND channel != 'online') AS received_direct_postal,
    countIf(received_at < period_start
            AND (end_at IS NULL OR end_at >= period_start)) AS carried_over,
    countIf(finished AND timeliness = 'early') AS resolved_early,
    countIf(finished AND timeliness = 'on_time') AS resolved_on_time,
    countIf(finished AND timeliness = 'late') AS resolved_late,
    countIf(NOT finished AND timeliness != 'late') AS pending_within,
    countIf(NOT finished AND timeliness = 'late') AS pending_overdue,
    sum(event_count) AS events
FROM (
    SELECT *, end_at IS NOT NULL AND end_at < t AS finished
    FROM ({judged})
    -- in the report: received by the judging instant and not finished before the period
    WHERE due_at IS NOT NULL AND received_at < t
      AND (end_at IS NULL OR end_at >= period_start)
)
GROUP BY agency_code
ORDER BY agency_code
"""


def ii06a(
    client: Client,
    period: _Period,
    now: datetime,
    agencies: tuple[str, ...],
    as_of: datetime | None,
    rule_set: Any,
) -> list[dict[str, Any]]:
    """One row per agency in II06aRow.as_dict() form (columns 3-13, the totals derived), and
    `events`: the distinct events behind its dossiers (II06aReport.events sums them)."""
    where, params = _scope(period, now, agencies, as_of, rule_set)
    sql = _II06A.replace("{judged}", _judged_dossiers(where, SINGLE_T))
    out = []
    for r in client.query(sql, parameters=params).named_results():
        c = {k: (v if k == "agency_code" else int(v)) for k, v in r.items()}
        out.append(
            {
                "agency_code": str(c["agency_code"]),
                "received_total": c["received_online"]
                + c["received_direct_postal"]
                + c["carried_over"],
                "received_online": c["received_online"],
                "received_direct_postal": c["received_direct_postal"],
                "carried_over": c["carried_over"],
                "resolved_total": c["resolved_early"] + c["resolved_on_time"] + c["resolved_late"],
                "resolved_early": c["resolved_early"],
                "resolved_on_time": c["resolved_on_time"],
                "resolved_late": c["resolved_late"],
                "pending_total": c["pending_within"] + c["pending_overdue"],
                "pending_within": c["pending_within"],
                "pending_overdue": c["pending_overdue"],
                "events": c["events"],
            }
        )
    return out


# --- index766.leaf_counts at eeced79 ------------------------------------------------------------

_INDEX_DOSSIERS = """
SELECT
    agency_code,
    countIf(finished) AS n_finished, countIf(finished AND timeliness != 'late') AS n_finished_ok,
    countIf(open_end) AS n_open_end, countIf(open_end AND timeliness != 'late') AS n_open_ok,
    countIf(received_in) AS n_received,
    countIf(received_in AND channel = 'online'
            AND (paper_result_required = 0 OR e_result = 1)) AS n_received_online_e,
    countIf(paid_in AND paid_amount > 0) AS n_paid,
    countIf(paid_in AND paid_online) AS n_paid_online,
    countIf(finished AND paper_result_required = 1) AS n_paper,
    countIf(finished AND paper_result_required = 1 AND e_result = 1) AS n_paper_e,
    countIf(received_in AND digitized_at IS NOT NULL AND digitized_at < t) AS n_digitized,
    countIf((finished OR open_end) AND last_rating.2 = 'unsatisfied') AS n_unsatisfied,
    groupUniqArrayIf(procedure_code, received_in AND channel = 'online') AS n_procs_online,
    groupUniqArrayIf(procedure_code, paid_in AND paid_online) AS n_procs_paid_online,
    sum(event_count) AS events, max(last_ingested_at) AS watermark
FROM (
    SELECT *,
        end_at IS NOT NULL AND end_at >= period_start AND end_at < t AS finished,
        received_at < t AND (end_at IS NULL OR end_at >= t) AS open_end,
        received_at >= period_start AND received_at < period_end AS received_in,
        paid_at IS NOT NULL AND paid_at >= period_start AND paid_at < t AS paid_in,
        arraySum(p -> p.3, payments) AS paid_amount
    FROM ({judged})
    WHERE due_at IS NOT NULL
)
GROUP BY agency_code
"""

_INDEX_FEEDBACK = f"""
SELECT
    agency_code,
    count() AS n_filed,
    countIf({ANSWERED_IN_TIME} OR {UNANSWERED} AND {T_DAY} <= deadline_day) AS n_handled_ok,
    countIf(last_rating.2 = 'unsatisfied' OR {ANSWERED_LATE}
            OR {UNANSWERED} AND {T_DAY} > deadline_day) AS n_not_satisfied,
    sum(event_count) AS events, max(last_ingested_at) AS watermark
FROM ({{rows}})
WHERE {FILED}
GROUP BY agency_code
"""

Counts = dict[str, Any]


def leaf_counts(
    client: Client,
    period: _Period,
    now: datetime,
    agencies: tuple[str, ...],
    *,
    as_of: datetime | None = None,
    rule_set: Any,
) -> dict[str, tuple[Counts, Counts]]:
    """Per agency code: (dossier counts, feedback counts), as index766.leaf_counts returns them
    (named result rows, procedure sets in no particular order)."""
    where, params = _scope(period, now, agencies, as_of, rule_set)
    d_sql = _INDEX_DOSSIERS.replace("{judged}", _judged_dossiers(where, SINGLE_T))
    f_sql = _INDEX_FEEDBACK.replace("{rows}", _feedback_rows(where))
    out: dict[str, tuple[Counts, Counts]] = {}
    for row in client.query(d_sql, parameters=params).named_results():
        out[row["agency_code"]] = (row, {})
    for row in client.query(f_sql, parameters=params).named_results():
        out[row["agency_code"]] = (out.get(row["agency_code"], ({}, {}))[0], row)
    return out
