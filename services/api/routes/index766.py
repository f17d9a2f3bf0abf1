"""GET /v1/index766: the QĐ 766 index per agency and period, indicator by indicator."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from services.api.deps import Context
from services.api.routes.metrics import ListParam, RuleSetParam, settled_as_of, split_list
from services.metrics import index766, rules
from services.metrics.queries import VN, MetricQueryError, Period, calendar
from services.metrics.scope import resolve
from services.reference.catalog import Catalog, ProcedureInfo
from services.reference.org_tree import OrgTree

router = APIRouter(prefix="/v1", tags=["index766"])


def _procedures(catalog: Catalog, tree: OrgTree, codes: set[str]) -> list[ProcedureInfo] | None:
    """Procedures under the scope's authority: those applicable at a level the scope has. The
    catalogue does not assign procedures to agencies, so a department sees every province-level
    procedure (stated in the answer)."""
    if len(catalog) == 0:
        return None
    levels = {tree.level(c) for c in codes if c in tree} or {"province", "district", "commune"}
    return [p for p in catalog if levels & set(p.levels)]


def _as_dict(result: index766.Index766, agency: str | None, name: str | None) -> dict[str, Any]:
    return {
        "agency": agency,
        "name": name,
        "total_points": result.total,
        "max_points": 100,
        "not_assessed_points": result.not_assessed,
        "groups": result.groups(),
        "indicators": [s.as_dict() for s in result.scores],
        "events": result.events,
        "watermark": result.watermark,
    }


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
) -> dict[str, Any]:
    now = settled_as_of(ctx, as_of)
    last = to or now.astimezone(VN).date()
    first = from_ or last.replace(month=1, day=1)
    try:
        period = Period.from_dates(first, last)
        chosen = rules.get(rule_set)
    except (MetricQueryError, rules.UnknownRuleSet) as exc:
        raise HTTPException(422, str(exc)) from exc
    requested = split_list(agency)
    scope = resolve(ctx.clickhouse, requested, period.last_day)
    catalog = Catalog.load(ctx.clickhouse, period.last_day)
    leaves = index766.leaf_counts(
        ctx.clickhouse, period, now, scope.agencies, as_of=as_of, rule_set=chosen
    )
    cal = calendar()

    def index_of(codes: set[str]) -> index766.Index766:
        dossiers, feedback = index766.combine([v for k, v in leaves.items() if k in codes])
        procedures = _procedures(catalog, scope.tree, codes)
        return index766.index_for(
            dossiers, feedback, procedures, period, cal, chosen, catalog.version
        )

    everything = set(scope.agencies) or set(leaves) | set(scope.tree)
    results = [_as_dict(index_of(everything), ",".join(requested) or None, None)]
    if group_by == "agency":
        tree = scope.tree
        units = sorted(c for c in everything if c in leaves or (c in tree and tree.children(c)))
        results = [
            _as_dict(
                index_of(tree.descendants(c) if c in tree else {c}),
                c,
                tree.name(c) if c in tree else None,
            )
            for c in units
        ]
    return {
        "period_from": first,
        "period_to": last,
        "results": results,
        "scoring": "lin = max × rate; thr T = max if rate ≥ T else max × rate / T; "
        "rates rounded as the rule set says",
        "note": "Catalogue indicators cover the procedures applicable at the scope's levels; "
        "indicators the events cannot support are missing, never zero.",
        "provenance": {
            "as_of": as_of,
            "rule_set": chosen.id,
            "calendar": cal.version,
            "org_tree": scope.tree_version,
            "catalog": catalog.version,
        },
    }
