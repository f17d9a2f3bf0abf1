"""A metric question asked of the store (MetricQuery): its figure, by month beside it, its daily
series and the items behind it; metric_query names the metric by id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from core.figures.definitions import METRICS
from core.figures.items import ITEM_COLUMNS, ITEM_KEYS, ITEM_RENAMED
from core.figures.metric_sql import MetricSQL
from core.figures.periods import DailyRow, MetricQueryError, MetricRow
from core.figures.reads import Read, consistently
from core.figures.rows import SINGLE_T, rows_with_t
from core.figures.sql_params import used
from core.zone import TZ, utc


class MetricQuery(MetricSQL):
    """A metric question (its fields and SQL: MetricSQL) asked of the store."""

    def items(
        self, client: Client, part: Literal["numerator", "denominator"], limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The items behind the figure (judged at the period end), paged: (total, page)."""
        base, params = self._items_from(part, Read.of(client, self.as_of))
        total = client.query(f"SELECT sum(sign) {base}", parameters=params).result_rows[0][0]
        page = self._item_rows(client, base, params, limit, offset)
        return int(total or 0), page

    def item_chunks(
        self, client: Client, part: Literal["numerator", "denominator"], chunk: int, limit: int
    ) -> Iterator[list[dict[str, Any]]]:
        """The first `limit` items behind the figure in the order of items(), `chunk` at a time:
        each chunk one query resuming after the last item of the one before (keyset), so memory
        holds one chunk whatever the population, each query reads only the items from there on
        (the facts are ordered by agency and item), and an item that changes between two
        chunks is never listed twice nor skipped."""
        read = Read.of(client, self.as_of)
        after: tuple[str, str] | None = None
        while limit > 0:
            base, params = self._items_from(part, read, after)
            rows = self._item_rows(client, base, params, min(chunk, limit), 0)
            if rows:
                yield rows
            if len(rows) < min(chunk, limit):
                return
            limit -= len(rows)
            after = (rows[-1]["agency_code"], rows[-1][ITEM_KEYS[self.metric.entity]])

    def _items_from(
        self,
        part: Literal["numerator", "denominator"],
        read: Read,
        after: tuple[str, str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The FROM and WHERE of the items of `part` (after the item `after`), and their
        parameters."""
        params: dict[str, Any] = {}
        resume = None
        if after is not None:
            key = ITEM_KEYS[self.metric.entity]
            # agency first alone: the facts' primary key prunes by it
            resume = (
                "agency_code >= {after_agency:String} AND (agency_code > {after_agency:String} "
                f"OR {key} > {{after_key:String}})"
            )
            params.update(after_agency=after[0], after_key=after[1])
        source = self._source(params, read, bucketed=False, items=True, resume=resume)
        condition = self.metric.population
        if part == "numerator":
            condition = f"({condition}) AND ({self.metric.numerator})"
        base = f"FROM ({source}) WHERE {condition}"
        return base, used(base, params)

    def _item_rows(
        self, client: Client, base: str, params: dict[str, Any], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        columns = ITEM_COLUMNS[self.metric.entity]
        key = ITEM_KEYS[self.metric.entity]
        # A version and its cancellation are the same row with opposite signs: what is left
        # after summing is the item as it stands.
        rows = client.query(
            f"SELECT * EXCEPT (net) FROM (SELECT {columns}, sum(sign) AS net {base} "
            f"GROUP BY ALL HAVING net > 0) ORDER BY agency_code, {key} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
            parameters={**params, "limit": limit, "offset": offset},
        ).named_results()
        return [
            {
                ITEM_RENAMED.get(k, k): utc(v) if isinstance(v, datetime) else v
                for k, v in row.items()
            }
            for row in rows
        ]

    def daily_by_agency(self, client: Client, read: Read | None = None) -> list[DailyRow]:
        """Per agency and local day of the metric's anchor: numerator, population and undecided
        items, judged now (plan forecasts, core/plans/evaluator.py). Flow figures only.
        `read`: as run()."""
        if self.metric.anchor is None:
            raise MetricQueryError(f"{self.metric.id} is a stock figure: it has no daily series")

        def ask(read: Read) -> list[DailyRow]:
            params: dict[str, Any] = {}
            split = self._split(params, read)
            source = self._source(params, read, bucketed=False, split=split)
            num = self.metric.numerator

            def partial(rows: str) -> str:
                return (
                    f"SELECT agency_code, toDate({self.metric.anchor}, '{TZ}') AS day, "
                    f"sumIf(sign, {num}) AS hits, sum(sign) AS total, "
                    f"{self._undecided()} AS pending, "
                    f"maxIf(last_ingested_at, sign > 0) AS watermark "
                    f"FROM ({rows}) WHERE {self.metric.population} GROUP BY agency_code, day"
                )

            parts = [partial(source)] if source else []
            if split is not None:  # whole past days from the day counts (core/figures/days.py)
                counted = self._counted(params, "day")
                parts.append(partial(rows_with_t(counted, SINGLE_T)))
            union = "\nUNION ALL\n".join(parts)
            sql = (
                "SELECT agency_code, day, sum(hits) AS hits, sum(total) AS total, "
                "sum(pending) AS pending, max(watermark) AS watermark "
                f"FROM ({union}) GROUP BY agency_code, day HAVING total != 0 "
                "ORDER BY agency_code, day"
            )
            rows = client.query(sql, parameters=used(sql, params)).result_rows
            return [
                DailyRow(str(a), d, int(h), int(n), int(q), utc(w)) for a, d, h, n, q, w in rows
            ]

        return consistently(client, self.as_of, read, ask)

    def run(self, client: Client, read: Read | None = None) -> list[MetricRow]:
        """`read`: how the store stands (Read.of), when the caller asks many questions in a row
        (the metrics service's cycle): asked once, not once per question. It stays right while
        the refolder moves on: a question folds from the parts whatever is past the watermark
        it reads itself."""

        def ask(read: Read) -> list[MetricRow]:
            sql, params = self.sql(read)
            return [
                MetricRow(None if g is None else str(g), int(n), int(d), int(ev), utc(wm), int(q))
                for g, n, d, ev, wm, q in client.query(sql, parameters=params).result_rows
            ]

        return consistently(client, self.as_of, read, ask)

    def run_with_months(
        self, client: Client, read: Read | None = None
    ) -> tuple[list[MetricRow], list[MetricRow]]:
        """run() and the same figure grouped by month, from one read: a flow figure counts each
        item once, in the month of its anchor, judged at one instant either way, so both are
        sums of the same (group, month) cells (a page shows both side by side)."""
        if self.metric.anchor is None or self.group_by not in (None, "agency"):
            raise MetricQueryError("by month beside: a flow figure, by agency or not grouped")

        def ask(read: Read) -> tuple[list[MetricRow], list[MetricRow]]:
            sql, params = self.sql(read, months=True)
            by_group: dict[str | None, list[MetricRow]] = defaultdict(list)
            by_month: dict[str | None, list[MetricRow]] = defaultdict(list)
            for g, month, n, d, ev, wm, q in client.query(sql, parameters=params).result_rows:
                group = None if g is None else str(g)
                cell = MetricRow(group, int(n), int(d), int(ev), utc(wm), int(q))
                by_group[group].append(cell)
                by_month[str(month)].append(cell)
            return _summed(by_group), _summed(by_month)

        return consistently(client, self.as_of, read, ask)


def _summed(cells: dict[str | None, list[MetricRow]]) -> list[MetricRow]:
    """Per group, its cells added up, as the figure's own GROUP BY would: groups in order, those
    with no items (a zero denominator) left out."""
    out = []
    for group in sorted(cells, key=lambda g: "" if g is None else g):
        parts = cells[group]
        marks = [c.watermark for c in parts if c.watermark is not None]
        row = MetricRow(
            group,
            sum(c.numerator for c in parts),
            sum(c.denominator for c in parts),
            sum(c.events for c in parts),
            max(marks, default=None),
            sum(c.pending for c in parts),
        )
        if row.denominator != 0:
            out.append(row)
    return out


def metric_query(metric_id: str, **kwargs: Any) -> MetricQuery:
    try:
        metric = METRICS[metric_id]
    except KeyError:
        raise MetricQueryError(f"unknown metric {metric_id!r}") from None
    return MetricQuery(metric=metric, **kwargs)
