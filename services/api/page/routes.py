"""GET / (the province scorecard) and GET /co-quan/{agency_code} (one agency), as HTML.

Outside the OpenAPI schema: these are pages for people; the same figures are in /v1/*.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from services.api.deps import ApiContext, Context
from services.api.page.figures import Year, agency_figures, province_figures
from services.api.page.pages import agency_page, province_page
from services.api.page.render import render
from services.api.page.targets import latest_statuses
from services.metrics.queries import VN

router = APIRouter(include_in_schema=False)

# Agency codes are upper-case identifiers (e.g. PHUONG_NHATRANG); anything else cannot exist and
# is answered without touching the database.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

YearParam = Annotated[str | None, Query(description="Năm (mặc định: năm nay)")]


def _year(ctx: ApiContext, nam: str | None) -> tuple[Year | None, int]:
    """The year asked for (None when it is not a year with figures) and the current year."""
    now = ctx.clock()
    this_year = now.astimezone(VN).year
    if nam is None:
        return Year.of(this_year, now), this_year
    if not nam.isdigit() or not 2000 <= int(nam) <= this_year:
        return None, this_year
    return Year.of(int(nam), now), this_year


# The figures change every few seconds but a page costs a dozen queries: let browsers and any
# proxy in front reuse it for a minute, the lag a public scorecard can afford (the server keeps
# its own copy too: services/api/page/cache.py).
_CACHE = {"Cache-Control": "public, max-age=60"}

Built = tuple[int, str]  # status, HTML


def not_found(message: str) -> Built:
    return 404, render("not_found.html", message=message)


def _serve(ctx: ApiContext, key: tuple[str, ...], build: Callable[[], Built]) -> HTMLResponse:
    if ctx.page_cache is None:
        status, body = build()
    else:
        page = ctx.page_cache.get(
            key, ctx.clock().timestamp(), build, clock=lambda: ctx.clock().timestamp()
        )
        status, body = page.status, page.body
    return HTMLResponse(body, status_code=status, headers=_CACHE if status == 200 else None)


@router.get("/", response_class=HTMLResponse)
def scorecard(ctx: Context, nam: YearParam = None) -> HTMLResponse:
    def build() -> Built:
        year, this_year = _year(ctx, nam)
        if year is None:
            return not_found(f"Không có số liệu cho năm “{nam}”.")
        figures = province_figures(ctx, year)
        statuses = latest_statuses(ctx.clickhouse, year.first, year.last)
        page = province_page(figures, ctx.get_plans(), statuses, this_year)
        return 200, render("province.html", page=page, c=page.common)

    return _serve(ctx, ("/", nam or ""), build)


@router.get("/co-quan/{agency_code}", response_class=HTMLResponse)
def agency(ctx: Context, agency_code: str, nam: YearParam = None) -> HTMLResponse:
    if not _CODE.match(agency_code):
        # Answered without the database or the cache: no code of this shape can exist.
        return HTMLResponse(not_found("Không tìm thấy cơ quan này.")[1], status_code=404)

    def build() -> Built:
        year, this_year = _year(ctx, nam)
        if year is None:
            return not_found(f"Không có số liệu cho năm “{nam}”.")
        figures = agency_figures(ctx, year, agency_code)
        statuses = latest_statuses(ctx.clickhouse, year.first, year.last, agency_code)
        # A code is shown when the org tree knows it or when it has figures or statuses: an
        # integrator's own code still counts its dossiers (services.metrics.scope).
        if agency_code not in figures.tree and not figures.has_data and not statuses:
            return not_found(f"Không tìm thấy cơ quan có mã “{agency_code}” trong năm {year.year}.")
        page = agency_page(figures, ctx.get_plans(), statuses, this_year)
        return 200, render("agency.html", page=page, c=page.common)

    return _serve(ctx, ("/co-quan", agency_code, nam or ""), build)
