"""GET /v1/index766: the QĐ 766 index per agency and period, indicator by indicator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from core.figures import index766, rules
from core.figures.completeness import Completeness, ScopeCompleteness
from core.figures.queries import MetricQueryError, Period, Read, calendar
from core.figures.rules import RuleSet
from core.figures.scope import Scope, resolve
from core.reference.calendar import CalendarRangeError
from core.reference.catalog import Catalog
from core.storage.pool import run_all
from core.zone import VN
from services.api.completeness import scope_completeness
from services.api.deps import ApiContext, Context
from services.api.routes.metrics import (
    FromMsParam,
    ListParam,
    RollupParam,
    RuleSetParam,
    ToMsParam,
    range_days,
    settled_as_of,
    split_list,
)

router = APIRouter(prefix="/v1", tags=["index766"])


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
    scope = resolve(ctx.clickhouse, split_list(agency), period.last_day, rollup)
    catalog = Catalog.load(ctx.clickhouse, period.last_day)
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


def _scoring(rule_set: RuleSet) -> str:
    r = rule_set.rules
    unit = "a percentage" if r.rate_unit == "percent" else "a fraction of 1"
    how = (
        "points from the unrounded numerator / denominator, rounded to 2 decimals only when "
        "shown (groups and total add the unrounded points)"
        if r.points_from == "exact_rate"
        else "points from the rate as shown"
    )
    return (
        "lin = max × rate; thr T = max if rate ≥ T else max × rate / T; "
        f"rate: {unit} with {r.rate_decimals} decimals; {how}"
    )


@router.get("/index766", summary="Chỉ số 766 per agency (rolled up through the org tree)")
def get_index766(
    ctx: Context,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    agency: ListParam = None,
    as_of: datetime | None = None,
    rule_set: RuleSetParam = None,
    group_by: Annotated[
        Literal["agency"] | None, Query(description="One index per agency of the scope")
    ] = None,
    rollup: RollupParam = True,
    from_ms: FromMsParam = None,
    to_ms: ToMsParam = None,
) -> dict[str, Any]:
    first, last = range_days(from_, to, from_ms, to_ms)
    try:
        evaluation = evaluate_index766(
            ctx, first, last, agency, as_of, rule_set, rollup=rollup, completeness=True
        )
        results = evaluation.by_agency() if group_by == "agency" else [evaluation.total()]
    except CalendarRangeError as exc:  # found by schemathesis: a 2021 period answered 500
        raise HTTPException(422, str(exc)) from exc
    judged = evaluation.completeness_of(None)
    return {
        "period_from": evaluation.first,
        "period_to": evaluation.last,
        "results": results,
        "scoring": _scoring(evaluation.rule_set),
        # how `rate` reads: a fraction of 1 under reference@1, a percentage from reference@2
        "rate_unit": evaluation.rule_set.rules.rate_unit,
        "note": "Catalogue indicators cover the procedures applicable at the scope's levels; "
        "indicators the events cannot support are missing, never zero.",
        "provenance": {
            "as_of": as_of,
            "rule_set": evaluation.rule_set.id,
            "calendar": calendar().version,
            "org_tree": evaluation.scope.tree_version,
            "catalog": evaluation.catalog.version,
            # the scope's as a whole; each result carries its own (the agency with its subtree)
            "completeness": None if judged is None else judged.as_dict(),
        },
    }
