"""The QĐ 766 index over one scope and period, for GET /v1/index766 and the public page alike
(services/api/routes/index766.py, services/api/page/figures.py): the leaf counts are read once,
and the index of any set of agencies is scored from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import HTTPException

from core.figures import index766, rules
from core.figures.completeness import Completeness, ScopeCompleteness
from core.figures.periods import MetricQueryError, Period
from core.figures.reads import Read, beside
from core.figures.rules import RuleSet
from core.figures.scope import Scope, resolve
from core.figures.sql_params import calendar
from core.reference.catalog import Catalog
from core.storage.pool import run_all
from core.zone import VN
from services.api.answers.metrics import settled_as_of
from services.api.completeness import scope_completeness
from services.api.deps import ApiContext
from services.api.params import split_list


def _as_dict(
    result: index766.Index766,
    agency: str | None,
    name: str | None,
    completeness: Completeness | None = None,
) -> dict[str, Any]:
    counted = any(s.denominator for s in result.scores if s.indicator.id in index766.FROM_EVENTS)
    extra = {} if completeness is None else {"completeness": completeness.as_dict()}
    return {
        "agency": agency,
        "name": name,
        "total_points": result.total,
        # null when no dossier or feedback was counted: the empty-population rules (5.2, 5.3)
        # and the catalogue alone would give points to a scope with no data, which a board
        # must not show as an index
        "points_with_data": result.total if counted else None,
        "max_points": 100,
        "not_assessed_points": result.not_assessed,
        "groups": result.groups(),
        "indicators": [s.as_dict() for s in result.scores],
        "events": result.events,
        "watermark": result.watermark,
        **extra,
    }


@dataclass(frozen=True)
class Index766Evaluation:
    """The index over one scope and period. The leaf counts are read once; the index of any set
    of agencies is then scored from them, so the route and the public page share one reading."""

    first: date
    last: date
    period: Period
    rule_set: RuleSet
    scope: Scope
    catalog: Catalog
    leaves: dict[str, tuple[index766.Counts, index766.Counts]]
    # the population's completeness, per agency (asked for by the route; the page reads its own)
    completeness: ScopeCompleteness | None = None

    def index_of(self, codes: set[str]) -> index766.Index766:
        parts = [v for k, v in self.leaves.items() if k in codes]
        dossiers, feedback = index766.combine(parts)
        procedures = index766.procedures_in_scope(self.catalog, self.scope.tree, codes)
        return index766.index_for(
            dossiers,
            feedback,
            procedures,
            self.period,
            calendar(),
            self.rule_set,
            self.catalog.version,
        )

    @property
    def everything(self) -> set[str]:
        return set(self.scope.agencies) or set(self.leaves) | set(self.scope.tree)

    def completeness_of(self, codes: set[str] | None) -> Completeness | None:
        """These agencies' completeness (the whole scope when None), within the scope."""
        if self.completeness is None:
            return None
        if codes is None:
            return self.completeness.total()
        return self.completeness.of(codes & set(self.scope.agencies) or codes)

    def total(self) -> dict[str, Any]:
        """The scope as a whole (every agency when none was asked for)."""
        return _as_dict(
            self.index_of(self.everything),
            ",".join(self.scope.requested) or None,
            None,
            self.completeness_of(None),
        )

    def by_agency(self) -> list[dict[str, Any]]:
        """One index per agency with figures or children, each rolled up through the org tree."""
        tree = self.scope.tree
        units = sorted(
            c for c in self.everything if c in self.leaves or (c in tree and tree.children(c))
        )
        out = []
        for c in units:
            codes = tree.descendants(c) if c in tree else {c}
            name = tree.name(c) if c in tree else None
            out.append(_as_dict(self.index_of(codes), c, name, self.completeness_of(codes)))
        return out


def evaluate_index766(
    ctx: ApiContext,
    first: date | None = None,
    last: date | None = None,
    agency: list[str] | None = None,
    as_of: datetime | None = None,
    rule_set: str | None = None,
    read: Read | None = None,
    rollup: bool = True,
    completeness: bool = False,
) -> Index766Evaluation:
    """`read`: as metric_result; `rollup`: as for a figure (False: the agencies' own dossiers);
    `completeness`: read the population's completeness too, beside the counts (one query)."""
    now = settled_as_of(ctx, as_of)
    last = last or now.astimezone(VN).date()
    first = first or last.replace(month=1, day=1)
    try:
        period = Period.from_dates(first, last)
        chosen = rules.get(rule_set)
    except (MetricQueryError, rules.UnknownRuleSet) as exc:
        raise HTTPException(422, str(exc)) from exc
    # the scope and the catalogue (each reads its table's stamp) beside how the store stands
    (scope, catalog), read = beside(
        ctx.clickhouse,
        as_of,
        read,
        [
            lambda: resolve(ctx.clickhouse, split_list(agency), period.last_day, rollup),
            lambda: Catalog.load(ctx.clickhouse, period.last_day),
        ],
    )
    calls: list[Callable[[], Any]] = [
        lambda: index766.leaf_counts(
            ctx.clickhouse, period, now, scope.agencies, as_of=as_of, rule_set=chosen, read=read
        )
    ]
    if completeness:
        day_1, day_n = period.first_day, period.last_day
        calls.append(lambda: scope_completeness(ctx, day_1, day_n, scope.agencies, now))
    leaves, *judged = run_all(ctx.clickhouse, calls)
    return Index766Evaluation(
        first, last, period, chosen, scope, catalog, leaves, judged[0] if judged else None
    )
