"""Plan targets and alerts: where every agency stands against every target, its history, and the
alerts raised when a status turns (core/plans). Read from what the metrics service stored, so
the same question gets the same answer however often it is asked."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from core.figures.definitions import METRICS
from core.plans.forecast import STATUS_LABELS
from core.plans.model import DateRange, Plan, Target
from core.plans.reads import (
    LatestStatus,
    alert_transitions,
    current_alerts,
    latest_statuses,
    status_history,
)
from core.reference.org_tree import OrgTree
from core.zone import VN, utc
from services.api import targets_table
from services.api.deps import Context
from services.api.exports import SHEET_RESPONSES, csv_response, xlsx_response
from services.api.params import ListParam, split_list

router = APIRouter(prefix="/v1", tags=["targets"])


def _status(s: LatestStatus) -> dict[str, Any]:
    agency = s.agency_code
    return {
        "agency_code": agency or None,
        "scope": "scope" if not agency else "agency",
        "period": {"from": s.period_start, "to": s.period_end},
        "numerator": s.numerator,
        "denominator": s.denominator,
        "pending": s.pending,
        "value": s.value,
        "threshold": s.threshold,
        "status": s.status,
        "status_label": STATUS_LABELS.get(s.status, s.status),
        "forecast": {
            "value": s.forecast,
            "low": s.forecast_low,
            "high": s.forecast_high,
            "interval": 0.8,
            "expected_denominator": s.expected_denominator,
            "method": s.forecast_method,
        },
        "budget": s.budget,
        "needed": s.needed,
        "needed_per_working_day": s.needed_per_working_day,
        "remaining_working_days": s.remaining_working_days,
        "burn_rates": dict(s.burn_rates),
        "data_watermark": utc(s.data_watermark),
        "evaluated_at": utc(s.evaluated_at),
    }


def target_out(plan: Plan, t: Target) -> dict[str, Any]:
    metric = METRICS.get(t.metric)
    period = t.period
    return {
        "plan": plan.key,
        "id": t.id,
        "text": t.text,
        "clause": t.clause,
        "metric": t.metric,
        "metric_label": metric.label if metric else t.metric,
        "scope": t.scope.model_dump(),
        "comparator": t.comparator,
        "threshold": t.threshold,
        "period": period.model_dump(by_alias=True) if isinstance(period, DateRange) else period,
        "in_charge": t.in_charge,
        "coordinating": list(t.coordinating),
        "applies_to": t.applies_to,
        "min_count": t.min_count,
        "per_agency": [q.model_dump() for q in t.per_agency],
        "notes": t.notes,
    }


def plan_out(plan: Plan) -> dict[str, Any]:
    return {
        "key": plan.key,
        "id": plan.id,
        "version": plan.version,
        "title": plan.title,
        "document": plan.document,
        "valid": plan.valid.model_dump(by_alias=True),
        "illustrative": plan.illustrative,
        "burn_alerts": [b.model_dump() for b in plan.burn_alerts],
        "unmeasurable": [u.model_dump() for u in plan.unmeasurable],
    }


def _latest(
    ctx: Context, plan: str | None, target: str | None, agencies: tuple[str, ...]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in latest_statuses(ctx.clickhouse, plan=plan, target=target, agencies=agencies):
        out.setdefault((s.plan, s.target_id), []).append(_status(s))
    return out


@router.get(
    "/targets",
    summary="Every plan target with the latest status of each agency",
    # format=csv|xlsx: the same rows as a sheet for the periodic report (services/api/targets_table)
    responses=SHEET_RESPONSES,
)
def list_targets(
    ctx: Context,
    plan: Annotated[str | None, Query(description="Plan key, e.g. kh-7860-2022@1")] = None,
    agency: ListParam = None,
    status: Annotated[
        Literal["met", "on_track", "at_risk", "missed", "insufficient_data"] | None,
        Query(description="Only targets where some row has this status"),
    ] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Any:
    plans = ctx.get_plans()
    if plan is not None and plan not in plans:
        raise HTTPException(404, f"unknown plan {plan!r}; known: {', '.join(sorted(plans))}")
    latest = _latest(ctx, plan, None, split_list(agency))
    selected: list[tuple[Plan, Target, list[dict[str, Any]]]] = []
    for p in plans.values():
        if plan is not None and p.key != plan:
            continue
        for t in p.targets:
            rows = latest.get((p.key, t.id), [])
            if status is not None:
                rows = [r for r in rows if r["status"] == status]
                if not rows:
                    continue
            selected.append((p, t, rows))
    if format != "json":
        return _sheet(ctx, format, selected)
    return {
        "plans": [plan_out(p) for p in plans.values() if plan is None or p.key == plan],
        "targets": [{**target_out(p, t), "statuses": rows} for p, t, rows in selected],
        "status_labels": STATUS_LABELS,
    }


def _sheet(
    ctx: Context, format: str, selected: list[tuple[Plan, Target, list[dict[str, Any]]]]
) -> Response:
    trees: dict[date, OrgTree] = {}

    def name_of(code: str, day: date) -> str:
        # The name in the org tree of the period's last day: a 2022 row keeps its 2022 unit.
        if day not in trees:
            trees[day] = OrgTree.load(ctx.clickhouse, day)
        return trees[day].name(code) if code in trees[day] else ""

    table = targets_table.rows(selected, name_of)
    today = ctx.clock().astimezone(VN).date()
    name = f"muc-tieu-ke-hoach_{today:%Y%m%d}"
    if format == "csv":
        return csv_response(name, targets_table.HEADINGS, table)
    plans = sorted({p.key for p, _, _ in selected})
    return xlsx_response(
        name,
        "Mục tiêu",
        "Tình hình thực hiện các mục tiêu kế hoạch",
        f"Kế hoạch: {', '.join(plans) or '—'} · số liệu đến {today:%d/%m/%Y}",
        targets_table.HEADINGS,
        table,
    )


@router.get("/targets/{target_id}", summary="One target: its latest statuses and their history")
def get_target(
    ctx: Context,
    target_id: str,
    plan: Annotated[str | None, Query(description="Plan key; needed when ids repeat")] = None,
    agency: ListParam = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    plans = ctx.get_plans()
    found = [
        (p, t)
        for p in plans.values()
        if plan in (None, p.key)
        for t in p.targets
        if t.id == target_id
    ]
    if not found:
        raise HTTPException(
            404, f"no target {target_id!r}" + (f" in plan {plan!r}" if plan else "")
        )
    if len(found) > 1:
        keys = ", ".join(p.key for p, _ in found)
        raise HTTPException(409, f"target {target_id!r} is in several plans ({keys}); pass plan=")
    p, t = found[0]
    agencies = split_list(agency)
    history = status_history(
        ctx.clickhouse,
        p.key,
        t.id,
        agencies,
        from_ or datetime(1970, 1, 1),
        to or datetime(2200, 1, 1),
        limit,
    )
    return {
        **target_out(p, t),
        "statuses": _latest(ctx, p.key, t.id, agencies).get((p.key, t.id), []),
        "history": [
            {
                **row._asdict(),
                "agency_code": row.agency_code or None,
                "evaluated_at": utc(row.evaluated_at),
                "burn_rates": dict(row.burn_rates),
            }
            for row in history
        ],
    }


@router.get("/alerts", summary="Plan alerts: firing now, or every transition")
def list_alerts(
    ctx: Context,
    state: Annotated[
        Literal["firing", "resolved", "all"], Query(description="Latest state of the alert")
    ] = "firing",
    agency: ListParam = None,
    plan: str | None = None,
    history: Annotated[bool, Query(description="Every transition instead of the latest")] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    asked = (None if state == "all" else state, split_list(agency), plan, limit)
    rows = (
        alert_transitions(ctx.clickhouse, *asked)
        if history
        else current_alerts(ctx.clickhouse, *asked)
    )
    out = []
    for row in rows:
        item = {k: utc(v) if isinstance(v, datetime) else v for k, v in row._asdict().items()}
        item["agency_code"] = item["agency_code"] or None
        item["evidence"] = json.loads(str(row.evidence))
        out.append(item)
    return out
