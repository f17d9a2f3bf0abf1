"""Periodic reports: Biểu II.06a as JSON, CSV or XLSX."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from core.figures import report_ii06a, rules
from core.figures.periods import FIRST_INSTANT, MetricQueryError, Period
from core.figures.reads import beside
from core.figures.scope import resolve
from core.figures.sql_params import calendar
from core.storage.pool import run_all
from core.zone import VN
from services.api.answers.metrics import AS_OF_SETTLE
from services.api.completeness import scope_completeness
from services.api.deps import Context
from services.api.exports import SHEET_RESPONSES, csv_response, xlsx_response
from services.api.params import ListParam, RuleSetParam, split_list

router = APIRouter(prefix="/v1/reports", tags=["reports"])

TITLE = "Biểu II.06a/VPCP/KSTT: Tình hình, kết quả giải quyết TTHC"


@router.get(
    "/ii06a",
    summary="Biểu II.06a for a period and a set of agencies",
    responses=SHEET_RESPONSES,
)
def ii06a(
    ctx: Context,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    agency: ListParam = None,
    as_of: datetime | None = None,
    format: Literal["json", "csv", "xlsx"] = "json",
    rule_set: RuleSetParam = None,
) -> Any:
    now = ctx.clock()
    if as_of is not None:
        if as_of.tzinfo is None or as_of > now - AS_OF_SETTLE:
            raise HTTPException(422, "as_of needs an offset and must be settled (≥ 5 s old)")
        if as_of < FIRST_INSTANT:  # found by schemathesis: year 392 gave 500
            raise HTTPException(422, f"as_of must be after {FIRST_INSTANT.isoformat()}")
        now = as_of
    last = to or now.astimezone(VN).date()
    first = from_ or last.replace(day=1)
    try:
        period = Period.from_dates(first, last)
        chosen = rules.get(rule_set)
    except (MetricQueryError, rules.UnknownRuleSet) as exc:
        raise HTTPException(422, str(exc)) from exc
    # the scope (it reads the org tree's stamp) beside how the store stands
    (scope,), read = beside(
        ctx.clickhouse,
        as_of,
        None,
        [lambda: resolve(ctx.clickhouse, split_list(agency), period.last_day)],
    )
    # the report and, for the JSON answer's provenance, its population's completeness side by
    # side (one more query; the sheets carry no provenance)
    calls: list[Callable[[], Any]] = [
        lambda: report_ii06a.compute(
            ctx.clickhouse, period, now, scope.agencies, as_of, chosen, read=read
        )
    ]
    if format == "json":
        calls.append(lambda: scope_completeness(ctx, first, last, scope.agencies, now))
    report, *completeness = run_all(ctx.clickhouse, calls)
    tree_rows = report_ii06a.roll_up(report.rows, scope.tree, scope.requested)
    total = report_ii06a.II06aRow(agency_code="Tổng cộng")
    for row in report.rows:
        total.add(row)
    if format == "json":
        return {
            "form": "II.06a/VPCP/KSTT",
            "period_from": first,
            "period_to": last,
            "columns": [
                {"field": f, "column": n, "heading": h} for f, n, h in report_ii06a.COLUMNS
            ],
            "rows": [r.as_dict() for r in tree_rows],
            "total": total.as_dict(),
            "provenance": {
                "as_of": as_of,
                "watermark": report.watermark,
                "events": report.events,
                "rule_set": chosen.id,
                "calendar": calendar().version,
                "org_tree": scope.tree_version,
                "completeness": completeness[0].total().as_dict(),
            },
        }
    headings = ["Mã", "Cơ quan", *(f"({n}) {h}" for _, n, h in report_ii06a.COLUMNS)]
    table = [
        [r.agency_code, "  " * r.depth + r.name]
        + [getattr(r.total, f) for f, _, _ in report_ii06a.COLUMNS]
        for r in tree_rows
    ]
    table.append(["", total.agency_code, *(getattr(total, f) for f, _, _ in report_ii06a.COLUMNS)])
    name = f"II06a_{first:%Y%m%d}_{last:%Y%m%d}"
    if format == "csv":
        return csv_response(name, headings, table)
    subtitle = f"Kỳ báo cáo: {first:%d/%m/%Y} – {last:%d/%m/%Y}"
    return xlsx_response(name, "II.06a", TITLE, subtitle, headings, table)
