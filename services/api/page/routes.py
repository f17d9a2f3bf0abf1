"""GET / (the province scorecard) and GET /co-quan/{agency_code} (one agency), as HTML.

Outside the OpenAPI schema: these are pages for people; the same figures are in /v1/*.
"""

from __future__ import annotations

import re
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
# proxy in front reuse it for a minute, the lag a public scorecard can afford.
_CACHE = {"Cache-Control": "public, max-age=60"}


def not_found(message: str) -> HTMLResponse:
    return HTMLResponse(render("not_found.html", message=message), status_code=404)


@router.get("/", response_class=HTMLResponse)
def scorecard(ctx: Context, nam: YearParam = None) -> HTMLResponse:
    year, this_year = _year(ctx, nam)
    if year is None:
        return not_found(f"Không có số liệu cho năm “{nam}”.")
    figures = province_figures(ctx, year)
    statuses = latest_statuses(ctx.clickhouse, year.first, year.last)
    page = province_page(figures, ctx.get_plans(), statuses, this_year)
    return HTMLResponse(render("province.html", page=page, c=page.common), headers=_CACHE)


@router.get("/co-quan/{agency_code}", response_class=HTMLResponse)
def agency(ctx: Context, agency_code: str, nam: YearParam = None) -> HTMLResponse:
    year, this_year = _year(ctx, nam)
    if year is None:
        return not_found(f"Không có số liệu cho năm “{nam}”.")
    if not _CODE.match(agency_code):
        return not_found("Không tìm thấy cơ quan này.")
    figures = agency_figures(ctx, year, agency_code)
    statuses = latest_statuses(ctx.clickhouse, year.first, year.last, agency_code)
    # A code is shown when the org tree knows it or when it has figures or statuses: an
    # integrator's own code still counts its dossiers (services.metrics.scope).
    if agency_code not in figures.tree and not figures.has_data and not statuses:
        return not_found(f"Không tìm thấy cơ quan có mã “{agency_code}” trong năm {year.year}.")
    page = agency_page(figures, ctx.get_plans(), statuses, this_year)
    return HTMLResponse(render("agency.html", page=page, c=page.common), headers=_CACHE)
