"""Named, parameterized SQL for the metric catalogue. User input only ever travels as parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from services.metrics import rules
from services.metrics.definitions import METRICS, TZ, Metric
from services.metrics.folds import dossier_source, feedback_source
from services.metrics.rules import RuleSet
from services.reference.calendar import WorkingCalendar

GroupBy = Literal["agency", "domain", "level", "day", "month"]
VN = ZoneInfo(TZ)
# The days and instants a query can name: ClickHouse's DateTime64(3) range, a day inside each end.
FIRST_DAY, LAST_DAY = date(1900, 1, 2), date(2299, 12, 30)
FIRST_INSTANT = datetime(1900, 1, 2, tzinfo=UTC)
LAST_INSTANT = datetime(2299, 12, 30, tzinfo=UTC)


_DT = "DateTime64(3, 'UTC')"

# One row per dossier with what every dossier figure needs. Supplement pauses follow reference §2:
# the k-th request pairs with the k-th resubmission; a pending request stops the clock.
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

# Working days of the loaded calendar years, passed as one array parameter: deadlines in working
# days are then plain index arithmetic, and a day outside the calendar yields NULL, never a guess.
_WD = "{working_days:Array(Date)}"


def _working_day(anchor: str, offset: str) -> str:
    """The working day `offset` places after the first working day x with `anchor` true; NULL
    when the calendar does not reach that far (never a silent 1970-01-01 from an index miss)."""
    first = f"arrayFirstIndex(x -> {anchor}, {_WD})"
    return (
        f"if({first} = 0 OR {first} + ({offset}) NOT BETWEEN 1 AND length({_WD}), NULL, "
        f"{_WD}[{first} + ({offset})])"
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
    {
    _working_day(
        f"x > toDate(subtractMilliseconds(t, 1), '{TZ}')", "{leading_working_days:Int32} - 1"
    )
} AS horizon_day
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

_GROUP_COLUMNS = {"agency": "agency_code", "domain": "domain_code", "level": "level"}


@cache
def calendar() -> WorkingCalendar:
    """The shipped working-day calendar (services/reference/data/calendar)."""
    return WorkingCalendar.load()


@cache
def _working_days() -> list[date]:
    cal = calendar()
    return [d.day for year in cal.years for d in cal.days(year) if d.is_working]


def rule_params(rule_set: RuleSet) -> dict[str, Any]:
    """Every parameter the figure SQL reads from the rules and the calendar."""
    return {**rule_set.sql_params(), "working_days": _working_days()}


def scope_params(
    period: Period,
    now: datetime,
    agencies: tuple[str, ...],
    as_of: datetime | None,
    rule_set: RuleSet,
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause and parameters shared by whole-scope figures (reports, the index)."""
    params: dict[str, Any] = {
        "period_start": period.start,
        "period_end": period.end,
        "judged_at": min(period.end, now),
        **rule_params(rule_set),
    }
    where = "1"
    if agencies:
        where = "agency_code IN {agencies:Array(String)}"
        params["agencies"] = list(agencies)
    if as_of is not None:
        params["as_of"] = as_of
    return where, params


def judged_dossiers(where: str, t_source: str, *, as_of: bool) -> str:
    """One row per dossier (and judging instant `t`) with its §2 timeliness at `t`.

    Parameters the SQL expects: period_start, period_end, multi_supplement_late, the ones `t_source`
    names (e.g. judged_at), `as_of` when as_of is set, and those of `where`.
    """
    rows = (
        _DOSSIER_ROWS.replace("{filters}", where)
        .replace("{t_source}", t_source)
        .replace("{source}", dossier_source(as_of))
    )
    return _DOSSIER_JUDGED.replace("{rows}", rows)


def feedback_rows(where: str, *, as_of: bool) -> str:
    """One row per feedback item with its answer deadline (`deadline_day`) and judging instant."""
    return _FEEDBACK_ROWS.replace("{filters}", where).replace("{source}", feedback_source(as_of))


SINGLE_T = f"ARRAY JOIN [{{judged_at:{_DT}}}] AS t"


_ITEM_COLUMNS = {
    "dossier": (
        "agency_code, dossier_id, domain_code, level, channel, received_at, due_at, end_at, "
        "effective_at, length(req) AS supplements, timeliness, event_count"
    ),
    "feedback": (
        "agency_code, feedback_id, topic, filed_at, due_at, answered_at, published_at, event_count"
    ),
}


class MetricQueryError(ValueError):
    """The question cannot be asked of this metric (e.g. a domain filter on feedback)."""


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    @classmethod
    def from_dates(cls, first: date, last: date) -> Period:
        """Whole calendar days in Asia/Ho_Chi_Minh, `last` included."""
        if last < first:
            raise MetricQueryError("`to` is before `from`")
        if first < FIRST_DAY or last > LAST_DAY:
            # DateTime64(3) holds 1900..2299; beyond it Python's datetime overflows too
            raise MetricQueryError(f"dates must lie within {FIRST_DAY}..{LAST_DAY}")
        start = datetime.combine(first, time(), VN).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(), VN).astimezone(UTC)
        return cls(start, end)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(VN).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(VN) - timedelta(days=1)).date()


@dataclass(frozen=True)
class Filters:
    agencies: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricRow:
    group: str | None
    numerator: int
    denominator: int
    events: int = 0  # distinct events behind the items counted (provenance)
    watermark: datetime | None = None  # newest ingest time among them

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class DailyRow:
    agency: str
    day: date
    hits: int
    total: int
    pending: int
    watermark: datetime | None


@dataclass
class MetricQuery:
    metric: Metric
    period: Period
    now: datetime
    filters: Filters = field(default_factory=Filters)
    group_by: GroupBy | None = None
    rule_set: RuleSet = field(default_factory=rules.get)
    # None: the live state. An ingest instant: only what was stored by then (reproducible).
    as_of: datetime | None = None
    org_tree: str = ""  # version of the org tree the agency filter was expanded with
    # Catalogue facts the SQL needs as sets of procedure codes (valid at the period end).
    full_online_eligible: tuple[str, ...] = ()

    def sql(self) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        source = self._source(params, bucketed=True)
        group = self._group_expr()
        sql = (
            f"SELECT {group} AS grp, {self.metric.numerator_sql()} AS numerator, "
            f"count() AS denominator, sum(event_count) AS events, "
            f"max(last_ingested_at) AS watermark "
            f"FROM ({source}) WHERE {self.metric.population} "
            f"GROUP BY grp ORDER BY grp"
        )
        return sql, params

    def items(
        self, client: Client, part: Literal["numerator", "denominator"], limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The items behind the figure (judged at the period end), paged: (total, page)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        source = self._source(params, bucketed=False)
        condition = self.metric.population
        if part == "numerator":
            condition = f"({condition}) AND ({self.metric.numerator})"
        columns = _ITEM_COLUMNS[self.metric.entity]
        key = "dossier_id" if self.metric.entity == "dossier" else "feedback_id"
        base = f"FROM ({source}) WHERE {condition}"
        total = client.query(f"SELECT count() {base}", parameters=params).result_rows[0][0]
        page = client.query(
            f"SELECT {columns} {base} ORDER BY agency_code, {key} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
            parameters=params,
        ).named_results()
        return int(total), [
            {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in page
        ]

    def daily_by_agency(self, client: Client) -> list[DailyRow]:
        """Per agency and local day of the metric's anchor: numerator, population and undecided
        items, judged now (plan forecasts, services/plans/status.py). Flow figures only."""
        if self.metric.anchor is None:
            raise MetricQueryError(f"{self.metric.id} is a stock figure: it has no daily series")
        params: dict[str, Any] = {}
        source = self._source(params, bucketed=False)
        num = self.metric.numerator
        pending = self.metric.pending or "0"
        sql = (
            f"SELECT agency_code, toDate({self.metric.anchor}, '{TZ}') AS day, "
            f"countIf({num}) AS hits, count() AS total, "
            f"countIf(NOT ({num}) AND ({pending})) AS pending, max(last_ingested_at) AS watermark "
            f"FROM ({source}) WHERE {self.metric.population} "
            f"GROUP BY agency_code, day ORDER BY agency_code, day"
        )
        rows = client.query(sql, parameters=params).result_rows
        return [DailyRow(str(a), d, int(h), int(n), int(q), utc(w)) for a, d, h, n, q, w in rows]

    def _source(self, params: dict[str, Any], *, bucketed: bool) -> str:
        params.update(
            period_start=self.period.start,
            period_end=self.period.end,
            judged_at=min(self.period.end, self.now),
            full_online_eligible=list(self.full_online_eligible),
            **rule_params(self.rule_set),
        )
        where = self._filters(params)
        if self.as_of is not None:
            params["as_of"] = self.as_of
        stock_buckets = (
            bucketed and self.metric.anchor is None and self.group_by in ("day", "month")
        )
        if stock_buckets:
            params["bucket_ends"] = self._bucket_ends()
            t_source = "ARRAY JOIN {bucket_ends:Array(DateTime64(3, 'UTC'))} AS t"
        else:
            # A one-element array keeps a single SQL shape for both cases.
            t_source = SINGLE_T
        if self.metric.entity == "dossier":
            source = judged_dossiers(where, t_source, as_of=self.as_of is not None)
        else:
            source = feedback_rows(where, as_of=self.as_of is not None)
        return source

    def run(self, client: Client) -> list[MetricRow]:
        sql, params = self.sql()
        result = client.query(sql, parameters=params)
        return [
            MetricRow(None if g is None else str(g), int(n), int(d), int(ev), utc(wm))
            for g, n, d, ev, wm in result.result_rows
        ]

    def _filters(self, params: dict[str, Any]) -> str:
        clauses = ["1"]
        if self.filters.agencies:
            clauses.append("agency_code IN {agencies:Array(String)}")
            params["agencies"] = list(self.filters.agencies)
        for name, values in (("domain", self.filters.domains), ("level", self.filters.levels)):
            if not values:
                continue
            if self.metric.entity != "dossier":
                raise MetricQueryError(f"feedback has no {name}; drop the `{name}` filter")
            clauses.append(f"{_GROUP_COLUMNS[name]} IN {{{name}s:Array(String)}}")
            params[f"{name}s"] = list(values)
        return " AND ".join(clauses)

    def _group_expr(self) -> str:
        if self.group_by is None:
            return "NULL"
        if self.group_by in _GROUP_COLUMNS:
            if self.metric.entity != "dossier" and self.group_by != "agency":
                raise MetricQueryError(f"feedback cannot be grouped by {self.group_by}")
            return f"toString({_GROUP_COLUMNS[self.group_by]})"
        anchor = self.metric.anchor or "subtractMilliseconds(t, 1)"
        bucket = "toDate" if self.group_by == "day" else "toStartOfMonth"
        return f"toString({bucket}({anchor}, '{TZ}'))"

    def _bucket_ends(self) -> list[datetime]:
        """End of every day/month bucket of the period (capped at now), as UTC instants."""
        ends: list[datetime] = []
        cursor = self.period.start.astimezone(VN).date()
        last = (self.period.end.astimezone(VN) - timedelta(microseconds=1)).date()
        while cursor <= last:
            if self.group_by == "day":
                nxt = cursor + timedelta(days=1)
            else:
                nxt = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)
            end = datetime.combine(nxt, time(), VN).astimezone(UTC)
            ends.append(min(end, self.period.end, self.now))
            cursor = nxt
            if ends[-1] >= self.now:
                break
        return ends


def utc(value: datetime | None) -> datetime | None:
    """Engine datetimes may come back without their zone; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def metric_query(metric_id: str, **kwargs: Any) -> MetricQuery:
    try:
        metric = METRICS[metric_id]
    except KeyError:
        raise MetricQueryError(f"unknown metric {metric_id!r}") from None
    return MetricQuery(metric=metric, **kwargs)
