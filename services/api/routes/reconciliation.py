"""The auditors' reconciliation with the source systems (issue 18): each agency-day's daily
manifest against what motcua stored, as the metrics service's reconciler last judged it
(core/figures/completeness.py, read through core/figures/audit.py), as JSON, CSV or XLSX (the
sheet: reconciliation_sheet.py); and one day's missing and extra ids."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query

from core.figures.audit import SUMMED, AuditDay, AuditQuestion, audit_days, audit_totals
from core.figures.completeness import STATUS_LABELS, day_ids
from core.figures.periods import FIRST_DAY, LAST_DAY, MetricQueryError, Period
from core.figures.reads import Read
from core.figures.scope import Scope, resolve
from core.zone import VN, utc
from services.api.answers.metrics import settled_as_of
from services.api.deps import Context
from services.api.exports import SHEET_RESPONSES
from services.api.params import ListParam, RollupParam, split_list
from services.api.routes.reconciliation_sheet import sheet
from services.api.schemas import (
    ReconciliationDay,
    ReconciliationIds,
    ReconciliationReport,
    ReconciliationTotals,
)

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])

# A leap year's audit in one question; never an unbounded scan.
MAX_DAYS = 366
# What a CSV or XLSX holds at most: a year of the whole province is ~70,000 agency-days; past
# this the question is refused (narrow it), since a cut audit sheet would mislead.
EXPORT_MAX_ROWS = 100_000

_NOT_LISTED = (
    "Bảng kê của ngày này không liệt kê mã hồ sơ: chỉ đối soát được theo số lượng "
    "(GET /v1/reconciliation). The day's manifest listed no ids: only its counts are compared."
)


def _period(first: date | None, last: date | None, at: datetime) -> Period:
    last = last or at.astimezone(VN).date()
    first = first or last.replace(day=1)
    try:
        period = Period.from_dates(first, last)
    except MetricQueryError as exc:
        raise HTTPException(422, str(exc)) from exc
    if (period.last_day - period.first_day).days + 1 > MAX_DAYS:
        raise HTTPException(
            422,
            f"Khoảng thời gian dài quá {MAX_DAYS} ngày: hãy chia nhỏ. "
            f"The period spans more than {MAX_DAYS} days: ask for it in parts.",
        )
    return period


def _statuses(values: list[str] | None) -> list[str]:
    asked = split_list(values)
    unknown = [s for s in asked if s not in STATUS_LABELS]
    if unknown:
        raise HTTPException(
            422, f"unknown status {unknown[0]!r}; one of: {', '.join(STATUS_LABELS)}"
        )
    return list(asked or STATUS_LABELS)


def _ids_url(agency: str, day: date) -> str:
    return f"/v1/reconciliation/{quote(agency, safe='')}/{day.isoformat()}/ids"


def _day(row: AuditDay, scope: Scope) -> ReconciliationDay:
    values = row._asdict()
    agency, day = str(row.agency_code), row.day
    differs = bool(row.missing or row.extra)
    return ReconciliationDay(
        **{k: values[k] for k in (*SUMMED, "reported_open", "stored_open", "source")},
        agency_code=agency,
        agency_name=scope.tree.name(agency) if agency in scope.tree else agency,
        day=day,
        status=row.status,
        status_label=STATUS_LABELS[row.status],
        has_ids=bool(row.has_ids),
        manifest_at=utc(row.manifest_at),
        judged_at=utc(row.judged_at),
        ids_url=_ids_url(agency, day) if row.has_ids and differs else None,
    )


def _totals(ctx: Context, question: AuditQuestion) -> tuple[ReconciliationTotals, datetime | None]:
    """Totals over every row the question covers, and its newest judgment."""
    found = audit_totals(ctx.clickhouse, question)
    reported = found.summed["reported_received"]
    totals = ReconciliationTotals(
        days=found.days,
        by_status=found.by_status,
        held_share=None if reported == 0 else round(found.summed["held_received"] / reported, 6),
        **found.summed,
    )
    return totals, found.last_judged


@router.get(
    "",
    summary="Each agency-day's manifest from the source against what motcua stored",
    response_model=ReconciliationReport,
    responses=SHEET_RESPONSES,  # format=csv|xlsx
)
def reconciliation(
    ctx: Context,
    from_: Annotated[date | None, Query(alias="from", description="First day (inclusive)")] = None,
    to: Annotated[date | None, Query(description="Last day (inclusive); default today")] = None,
    agency: ListParam = None,
    status: Annotated[
        list[str] | None,
        Query(
            description="Only these statuses (repeat or separate with commas): matched, "
            "missing, extra, missing_and_extra, counts_differ",
            max_length=20,
        ),
    ] = None,
    as_of: Annotated[
        datetime | None,
        Query(description="Only the judgments made by this instant (with offset, ≥ 5 s old)"),
    ] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
    page: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="JSON only; default 1")
    ] = None,
    page_size: Annotated[
        int | None, Query(ge=1, le=10_000, description="JSON only; default 1000")
    ] = None,
    rollup: RollupParam = True,
) -> Any:
    """Per agency and day with a manifest (bảng kê cuối ngày) in `from`..`to` (at most 366
    days): the source's counts of dossiers received, finished and open at the day's end and of
    feedback filed and answered, against motcua's; the reported dossiers held, missing and extra;
    the status (`status_label` in Vietnamese). Each row is the latest judgment of its day made by
    `as_of` (default now), so an `as_of` answer never changes. An agency means it and everything
    under it in the org tree of the period's end (`rollup=false`: the agency alone).

    JSON: a page of rows (by agency, then day) and totals over all of them. CSV (UTF-8 with
    BOM) and XLSX: every row and a total line, with Vietnamese headings, at most 100,000 rows
    (narrow the question past that); `page` and `page_size` are refused with them."""
    if format != "json" and (page is not None or page_size is not None):
        raise HTTPException(
            422,
            "Tệp CSV/XLSX gồm mọi dòng: bỏ `page` và `page_size` (chỉ dùng cho JSON). "
            "format=csv|xlsx holds every row: drop `page` and `page_size` (they page the JSON).",
        )
    at = settled_as_of(ctx, as_of)
    period = _period(from_, to, at)
    statuses = _statuses(status)
    scope = resolve(ctx.clickhouse, split_list(agency), period.last_day, rollup)
    question = AuditQuestion(scope.agencies, period.first_day, period.last_day, at, tuple(statuses))
    totals, last_judged = _totals(ctx, question)
    if format != "json" and totals.days > EXPORT_MAX_ROWS:
        raise HTTPException(
            422,
            f"Quá {EXPORT_MAX_ROWS} dòng ({totals.days}): hãy thu hẹp thời gian hoặc cơ quan. "
            f"More than {EXPORT_MAX_ROWS} rows ({totals.days}): narrow the period or agencies.",
        )
    page, page_size = page or 1, page_size or 1000
    limit, offset = (page_size, (page - 1) * page_size) if format == "json" else (totals.days, 0)
    days = [_day(r, scope) for r in audit_days(ctx.clickhouse, question, limit, offset)]
    if format == "json":
        return ReconciliationReport(
            period_from=period.first_day,
            period_to=period.last_day,
            agency=list(scope.requested),
            as_of=as_of,
            computed_at=at,
            org_tree=scope.tree_version,
            last_judged_at=last_judged,
            total=totals.days,
            page=page,
            page_size=page_size,
            rows=days,
            totals=totals,
        )
    return sheet(format, period, at, as_of, days, totals)


@router.get(
    "/{agency}/{day}/ids",
    summary="The missing and extra dossier ids of one agency-day",
    response_model=ReconciliationIds,
    responses={
        404: {
            "description": "Không có bảng kê cho ngày này / no manifest for that agency and day",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
)
def reconciliation_ids(
    ctx: Context,
    agency: Annotated[str, Path(max_length=200, description="One agency code (no subtree)")],
    day: Annotated[date, Path(description="The local day (Asia/Ho_Chi_Minh)")],
) -> ReconciliationIds:
    """Judged now, from the day's latest manifest and the live data (a late event that closed
    the gap since the last judgment is already counted): the ids the source listed that motcua
    does not hold as received that day by that agency, and those it holds that the source did
    not list. A manifest without ids (a big day) gives no id: `listed` false and a `note`."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(422, f"day must lie within {FIRST_DAY}..{LAST_DAY}")
    now = ctx.clock()
    found = day_ids(ctx.clickhouse, agency, day, Read.of(ctx.clickhouse, None), now)
    if found is None:
        raise HTTPException(
            404,
            f"Không có bảng kê của {agency} ngày {day:%d/%m/%Y}. "
            f"No manifest for {agency} on {day.isoformat()}.",
        )
    return ReconciliationIds(
        agency_code=agency,
        day=day,
        listed=found.listed,
        missing=len(found.missing),
        extra=len(found.extra),
        missing_ids=list(found.missing),
        extra_ids=list(found.extra),
        judged_at=now,
        note=None if found.listed else _NOT_LISTED,
    )
