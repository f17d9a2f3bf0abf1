"""GET /v1/index766: the QĐ 766 index per agency and period, indicator by indicator."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from core.figures.rules import RuleSet
from core.figures.sql_params import calendar
from core.reference.calendar import CalendarRangeError
from services.api.answers.index766 import evaluate_index766
from services.api.deps import Context
from services.api.params import (
    FromMsParam,
    ListParam,
    RollupParam,
    RuleSetParam,
    ToMsParam,
    range_days,
)

router = APIRouter(prefix="/v1", tags=["index766"])


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
