"""GET /v1/open/…: the public page's figures as open data, JSON or CSV, without a key.

The page's figures are public by design (the plan's transparency goals); these routes serve
exactly them, from the same Scorecard the page at `/` is rendered from (scorecard.py), so page
and open data cannot disagree: they are the page's keyless surface, hence in this package, not
among the keyed routes (services/api/routes). Each answer carries the figures' definitions and
provenance; a table is made once per year and cache period, whatever the number of callers, and
each client address is bounded (services/api/admission.py AddressRate). Item-level data
(drill-downs, trails, dead letters) stays behind a key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from core.zone import VN
from services.api.auth import presented_key
from services.api.deps import ApiContext, Context
from services.api.exports import CSV_RESPONSES, to_csv
from services.api.open_schemas import (
    OpenCatalog,
    OpenCatalogEntry,
    OpenDataset,
    OpenFigures,
    OpenIndex766,
    OpenMonthly,
    OpenTargets,
)
from services.api.page.figures import OLDEST_YEAR, Year
from services.api.page.open_tables import TABLES, TITLES, Table, definitions
from services.api.page.open_targets import targets_table
from services.api.page.pages import FIRST_YEAR
from services.api.page.routes import CACHE_CONTROL
from services.api.page.scorecard import Scorecard, scorecard

_RATE_LIMITED = (
    "Quá nhiều yêu cầu dữ liệu mở từ địa chỉ này; hãy thử lại sau. "
    "Too many open data requests from this address: retry after the Retry-After seconds."
)


async def bounded(request: Request, ctx: Context) -> None:
    """Per client address, unless a valid key is presented (keyed callers are counted per key
    by the admission middleware). Async: a refusal costs no worker thread."""
    token = presented_key(request)
    if token is not None and await asyncio.to_thread(ctx.keys.authenticate, token) is not None:
        return
    address = request.client.host if request.client else ""
    wait = ctx.admission.open_data.admit(address)
    if wait:
        raise HTTPException(429, _RATE_LIMITED, headers={"Retry-After": str(wait)})


router = APIRouter(
    prefix="/v1/open",
    tags=["open-data"],
    dependencies=[Depends(bounded)],
    responses={429: {"description": "Quá nhiều yêu cầu / too many requests: see Retry-After"}},
)


YearParam = Annotated[
    int | None,
    Query(ge=OLDEST_YEAR, le=2299, description="Năm (mặc định: năm nay, đến hôm nay)"),
]
FormatParam = Annotated[Literal["json", "csv"], Query(description="json or csv (UTF-8, BOM)")]


def _year(ctx: ApiContext, year: int | None) -> tuple[Year, int]:
    now = ctx.clock()
    this_year = now.astimezone(VN).year
    chosen = Year.of(this_year if year is None else year, now)
    if chosen is None:
        raise HTTPException(422, f"năm {year} chưa bắt đầu / year {year} has not started")
    return chosen, this_year


def _provenance(ctx: ApiContext, card: Scorecard) -> dict[str, Any]:
    p = card.figures.provenance
    cache = ctx.page_cache
    return {
        "computed_at": card.computed_at,
        "judged_at": p.judged_at,
        "watermark": p.watermark,
        "rule_set": p.rule_set,
        "org_tree": p.org_tree,
        "calendar": p.calendar,
        "catalog": card.figures.catalog,
        "cache_seconds": cache.seconds if cache else 0,
    }


_MODELS: dict[str, type[OpenDataset]] = {
    "figures": OpenFigures,
    "monthly": OpenMonthly,
    "index766": OpenIndex766,
    "targets": OpenTargets,
}
# What each dataset's table is made by (the targets' table lives beside the page's targets).
_TABLES: dict[str, Callable[[Scorecard], Table]] = {**TABLES, "targets": targets_table}


def _json(ctx: ApiContext, name: str, card: Scorecard, table: Table) -> bytes:
    body = {
        "dataset": name,
        "title": f"{TITLES[name]}, năm {card.year.year}",
        "year": card.year.year,
        "period_from": card.year.first,
        "period_to": card.year.last,
        "definitions": definitions(name),
        "provenance": _provenance(ctx, card),
        "rows": table.rows,
    }
    return _MODELS[name].model_validate(body).model_dump_json().encode()


def _answer(ctx: ApiContext, name: str, year: int | None, format: str) -> Response:
    chosen, this_year = _year(ctx, year)
    card = scorecard(ctx, chosen, this_year)
    table = card.once(f"open:{name}", lambda: _TABLES[name](card))
    headers = {
        # browsers and proxies may keep an answer as long as the page
        "Cache-Control": CACHE_CONTROL,
        "Link": f'</v1/open/{name}?year={chosen.year}&format=json>; rel="describedby"',
    }
    if format == "csv":
        body = card.once(f"open:{name}:csv", lambda: to_csv(table.headings, table.cells))
        stem = f"{name}-{chosen.year}"
        headers["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
        p = card.figures.provenance
        headers["X-Motcua-Computed-At"] = card.computed_at.isoformat()
        if p.watermark is not None:
            headers["X-Motcua-Watermark"] = p.watermark.isoformat()
        headers["X-Motcua-Rule-Set"] = p.rule_set
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    body = card.once(f"open:{name}:json", lambda: _json(ctx, name, card, table))
    return Response(body, media_type="application/json", headers=headers)


_DOC = (
    "Open to everyone, no key. `format=csv` for a spreadsheet (UTF-8 with BOM; decimal point); "
    "its provenance is in the X-Motcua-* headers and the JSON answer it links to. The same "
    "answer is served for the cache period (MOTCUA_API_PAGE_CACHE_SECONDS)."
)


@router.get(
    "/figures",
    summary="Số liệu theo cơ quan: the page's four rates and 766 points, per agency and province",
    description=_DOC,
    response_model=OpenFigures,
    responses=CSV_RESPONSES,
)
def open_figures(ctx: Context, year: YearParam = None, format: FormatParam = "json") -> Response:
    return _answer(ctx, "figures", year, format)


@router.get(
    "/monthly",
    summary="Toàn tỉnh theo tháng: the page's four rates for the province, month by month",
    description=_DOC,
    response_model=OpenMonthly,
    responses=CSV_RESPONSES,
)
def open_monthly(ctx: Context, year: YearParam = None, format: FormatParam = "json") -> Response:
    return _answer(ctx, "monthly", year, format)


@router.get(
    "/index766",
    summary="Chỉ số 766 theo cơ quan: points per group, per agency and province",
    description=_DOC,
    response_model=OpenIndex766,
    responses=CSV_RESPONSES,
)
def open_index766(ctx: Context, year: YearParam = None, format: FormatParam = "json") -> Response:
    return _answer(ctx, "index766", year, format)


@router.get(
    "/targets",
    summary="Mục tiêu kế hoạch: every target of the year's plans and where it stands",
    description=_DOC,
    response_model=OpenTargets,
    responses=CSV_RESPONSES,
)
def open_targets(ctx: Context, year: YearParam = None, format: FormatParam = "json") -> Response:
    return _answer(ctx, "targets", year, format)


@router.get("", summary="Danh mục dữ liệu mở: the open datasets", response_model=OpenCatalog)
def open_catalog(ctx: Context) -> OpenCatalog:
    this_year = ctx.clock().astimezone(VN).year
    return OpenCatalog(
        description="Số liệu công khai của trang kết quả, không cần khóa API; số liệu từng hồ "
        "sơ, từng PAKN cần khóa. Public figures of the scorecard page, no key needed; "
        "item-level data needs a key.",
        years=list(range(this_year, FIRST_YEAR - 1, -1)),
        datasets=[
            OpenCatalogEntry(
                dataset=name,
                title=title,
                json_url=f"/v1/open/{name}?format=json",
                csv_url=f"/v1/open/{name}?format=csv",
            )
            for name, title in TITLES.items()
        ],
    )
