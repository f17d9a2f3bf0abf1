"""A metric question's SQL (MetricSQL): the figure's sums per group over the facts and the day
counts, its filters, groups and judging instants. core/figures/metric_query.py asks it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from core.figures import days, rules
from core.figures.dossier_sql import judged_dossiers, plain_dossiers
from core.figures.feedback_sql import feedback_rows
from core.figures.metric_model import Metric
from core.figures.periods import Filters, GroupBy, MetricQueryError, Period, next_month
from core.figures.pruning import Split, day_split, prune_clause
from core.figures.reads import Read
from core.figures.rows import SINGLE_T, rows_with_t
from core.figures.rules import RuleSet
from core.figures.sql_params import rule_params, used
from core.zone import TZ, VN

# Columns of the judgment (DOSSIER_JUDGED, APOLOGY_JUDGED) a figure's SQL may name.
_JUDGED = ("timeliness", "effective_at", "requests", "judged_at", "finished_by_t")
_APOLOGY = ("apology_ok", "apology_deadline_day", "horizon_day", "due_day", "due_missed")

_GROUP_COLUMNS = {"agency": "agency_code", "domain": "domain_code", "level": "level"}


@dataclass
class MetricSQL:
    """What a metric question names, and its SQL (core/figures/metric_query.py asks it)."""

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

    def sql(self, read: Read | None = None, months: bool = False) -> tuple[str, dict[str, Any]]:
        """`months`: rows per group and month of the anchor, zero denominators kept (the cells
        run_with_months adds up)."""
        read = read or Read(self.as_of is not None)
        params: dict[str, Any] = {}
        split = self._split(params, read)
        source = self._source(params, read, bucketed=True, split=split)
        keys = "grp, month" if months else "grp"
        having = "" if months else "HAVING denominator != 0 "
        if split is None:
            sql = f"{self._partial(source, months=months)} {having}ORDER BY {keys}"
            return sql, used(sql, params)
        if self.metric.pending is not None:  # the day counts know no deadline to come
            raise MetricQueryError(f"{self.metric.id}: undecided items need the facts")
        # whole days from the day counts, the rest from the facts (core/figures/days.py)
        bucket = "month" if months else self.group_by
        counted = self._counted(params, bucket if bucket in ("day", "month") else None, split)
        partials = [self._partial(rows_with_t(counted, SINGLE_T), counts=True, months=months)]
        if source:
            partials.append(self._partial(source, months=months))
        union = "\nUNION ALL\n".join(partials)
        sql = (
            f"SELECT {keys}, sum(numerator) AS numerator, sum(denominator) AS denominator, "
            "sum(events) AS events, max(watermark) AS watermark, sum(pending) AS pending "
            f"FROM ({union}) GROUP BY {keys} {having}ORDER BY {keys}"
        )
        return sql, used(sql, params)

    def _partial(self, source: str, counts: bool = False, months: bool = False) -> str:
        """The figure's sums per group (and month of the anchor) over `source`: facts rows (a
        row per item version), or day counts (a row per day and kind of dossier, `sign`
        holding how many)."""
        numerator = self.metric.weighted_numerator_sql()
        events = "sum(sign * event_count)"
        if counts:
            summed = days.DAY_METRICS[self.metric.id]
            if summed is not None:
                numerator = f"toInt64(sumIf({summed}, {self.metric.numerator}))"
            events = "sum(events)"
        month = f", {self._group_expr('month')} AS month" if months else ""
        pending = "toInt64(0)" if counts else self._undecided()
        return (
            f"SELECT {self._group_expr()} AS grp{month}, "
            f"{numerator} AS numerator, sum(sign) AS denominator, {events} AS events, "
            f"maxIf(last_ingested_at, sign > 0) AS watermark, {pending} AS pending "
            f"FROM ({source}) WHERE {self.metric.population} "
            f"GROUP BY grp{', month' if months else ''}"
        )

    def _undecided(self) -> str:
        """The sum of the population's undecided items (Metric.pending) out of the numerator.
        Both conditions are read as false where NULL: an unanswered item's `answered_at < t` is
        NULL, and NOT NULL is NULL too, which sumIf skips; written plainly, every unanswered
        item fell out of the count."""
        if self.metric.pending is None:
            return "toInt64(0)"
        return (
            f"sumIf(sign, NOT ifNull(({self.metric.numerator}), 0) "
            f"AND ifNull(({self.metric.pending}), 0))"
        )

    def _split(self, params: dict[str, Any], read: Read) -> Split | None:
        """Where a live flow figure stops reading the day counts (day_split). None: the facts
        alone (as of an instant, or a figure the counts do not answer)."""
        if read.as_of or not read.counts or self.metric.id not in days.DAY_METRICS:
            return None
        return day_split(self.metric.reads, self.period, self.now, params)

    def _source(
        self,
        params: dict[str, Any],
        read: Read,
        *,
        bucketed: bool,
        items: bool = False,
        split: Split | None = None,
        resume: str | None = None,
    ) -> str:
        """`resume`: a condition on the items' key columns (the drill-down's keyset), read with
        the filters so that it prunes what is read."""
        judged_at = min(self.period.end, self.now)
        params.update(
            period_start=self.period.start,
            period_end=self.period.end,
            judged_at=judged_at,
            full_online_eligible=list(self.full_online_eligible),
            **rule_params(self.rule_set, self.period),
        )
        where = self._filters(params)
        if resume is not None:
            where = f"{where} AND ({resume})"
        if self.as_of is not None:
            params["as_of"] = self.as_of
        stock_buckets = (
            bucketed and self.metric.anchor is None and self.group_by in ("day", "month")
        )
        t_min = judged_at
        if stock_buckets:
            ends = self._bucket_ends()
            params["bucket_ends"] = ends
            t_min = min(ends, default=judged_at)
            t_source = "ARRAY JOIN {bucket_ends:Array(DateTime64(3, 'UTC'))} AS t"
        else:
            t_source = SINGLE_T
        prune = prune_clause(self.metric.reads, self.period.start, self.period.end, t_min)
        agencies = "agency_code IN {agencies:Array(String)}" if self.filters.agencies else "1"
        if self.metric.entity == "feedback":
            return feedback_rows(where, read=read, prune=prune, agencies=agencies)
        # Judge only what the figure reads: planning the judgment costs more than most scans.
        reads = " ".join(
            x or "" for x in (self.metric.population, self.metric.numerator, self.metric.summed)
        )
        if items or any(name in reads for name in _JUDGED):
            apology = items or any(name in reads for name in _APOLOGY)
            return judged_dossiers(
                where,
                t_source,
                read=read,
                prune=prune,
                agencies=agencies,
                apology=apology,
                split=split,
                finished=self.metric.finished_only and not items,
            )
        return plain_dossiers(
            where, t_source, read=read, prune=prune, agencies=agencies, split=split
        )

    def _counted(
        self, params: dict[str, Any], bucket: str | None, split: Split | None = None
    ) -> str:
        """The figure's rows from the day counts (core/figures/days.py): its anchor's rows, or
        those DAY_ANCHOR_ROWS names for it; over `split`'s whole months when given (a daily
        series reads days alone)."""
        return days.day_rows(
            self.metric.reads,
            self._filters(params),
            bucket,
            anchor_row=days.DAY_ANCHOR_ROWS.get(self.metric.id, ""),
            months=split.months if split else False,
            edges=split.edges if split else True,
        )

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

    def _group_expr(self, group_by: GroupBy | None = None) -> str:
        """The SQL of a group: the query's own, or `group_by` (the month beside it)."""
        group_by = group_by or self.group_by
        if group_by is None:
            return "NULL"
        if group_by in _GROUP_COLUMNS:
            if self.metric.entity != "dossier" and group_by != "agency":
                raise MetricQueryError(f"feedback cannot be grouped by {group_by}")
            return f"toString({_GROUP_COLUMNS[group_by]})"
        anchor = self.metric.anchor or "subtractMilliseconds(t, 1)"
        bucket = "toDate" if group_by == "day" else "toStartOfMonth"
        return f"toString({bucket}({anchor}, '{TZ}'))"

    def _bucket_ends(self) -> list[datetime]:
        """End of every day/month bucket of the period (capped at now), as UTC instants."""
        ends: list[datetime] = []
        cursor = self.period.start.astimezone(VN).date()
        last = (self.period.end.astimezone(VN) - timedelta(microseconds=1)).date()
        while cursor <= last:
            nxt = cursor + timedelta(days=1) if self.group_by == "day" else next_month(cursor)
            end = datetime.combine(nxt, time(), VN).astimezone(UTC)
            ends.append(min(end, self.period.end, self.now))
            cursor = nxt
            if ends[-1] >= self.now:
                break
        return ends
