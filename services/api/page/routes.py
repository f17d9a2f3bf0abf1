"""GET / (the province scorecard) and GET /co-quan/{agency_code} (one agency), as HTML.

Outside the OpenAPI schema: these are pages for people; the same figures are open data at
/v1/open/… (services/api/page/open_data.py), drawn from the same reading of the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from core.plans.reads import agency_known
from core.zone import VN
from services.api.deps import ApiContext, Context
from services.api.page.figures import OLDEST_YEAR, Year, agency_figures
from services.api.page.pages import agency_page
from services.api.page.render import render
from services.api.page.scorecard import scorecard
from services.api.page.targets import latest_statuses

router = APIRouter(include_in_schema=False)

# Agency codes are upper-case identifiers (e.g. PHUONG_NHATRANG); anything else cannot exist and
# is answered without touching the database.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

YearParam = Annotated[str | None, Query(description="Năm (mặc định: năm nay)")]


_YEAR = re.compile(r"^[0-9]{4}$")  # ASCII only: "２０２６".isdigit() is true in Python


def _year(ctx: ApiContext, nam: str | None) -> tuple[Year | None, int]:
    """The year asked for (None when it is not a year with figures) and the current year.
    Only the canonical spelling counts: `02026` or full-width digits would each be a page of
    their own in the cache (a full build apiece: issue 14), so they are no year at all."""
    now = ctx.clock()
    this_year = now.astimezone(VN).year
    if nam is None:
        return Year.of(this_year, now), this_year
    if not _YEAR.match(nam) or not OLDEST_YEAR <= int(nam) <= this_year:
        return None, this_year
    return Year.of(int(nam), now), this_year


def _known(ctx: ApiContext, code: str, year: Year) -> bool:
    """Whether any page can exist for this agency code: the reference data knows it, or it has
    dossiers, feedback or the year's target statuses (an integrator's own code still counts its
    own). Lookups by each table's key, a few ms: a made-up code is a fast 404, never a page
    build (2-3 s each: issue 14)."""
    return agency_known(ctx.clickhouse, code, year.first, year.last)


# The figures change every few seconds but a page costs a dozen queries: let browsers and any
# proxy in front reuse it for a minute, the lag a public scorecard can afford (the server keeps
# its own copy too: services/api/cache.py).
CACHE_CONTROL = "public, max-age=60"  # the open data's answers too (page/open_data.py)
_CACHE = {"Cache-Control": CACHE_CONTROL}

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


def _no_year(nam: str | None) -> HTMLResponse:
    """Answered before the cache and the database: not a year this service has."""
    return HTMLResponse(not_found(f"Không có số liệu cho năm “{nam}”.")[1], status_code=404)


@router.get("/", response_class=HTMLResponse)
def scorecard_page(ctx: Context, nam: YearParam = None) -> HTMLResponse:
    year, this_year = _year(ctx, nam)
    if year is None:
        return _no_year(nam)
    # The figures are the open data's (/v1/open/…): one reading of the store for both.
    card = scorecard(ctx, year, this_year)
    html = card.once("html", lambda: render("province.html", page=card.page, c=card.page.common))
    return HTMLResponse(html, headers=_CACHE)


@router.get("/co-quan/{agency_code}", response_class=HTMLResponse)
def agency(ctx: Context, agency_code: str, nam: YearParam = None) -> HTMLResponse:
    if not _CODE.match(agency_code):
        # Answered without the database or the cache: no code of this shape can exist.
        return HTMLResponse(not_found("Không tìm thấy cơ quan này.")[1], status_code=404)
    year, this_year = _year(ctx, nam)
    if year is None:
        return _no_year(nam)
    if not _known(ctx, agency_code, year):
        message = f"Không tìm thấy cơ quan có mã “{agency_code}”."
        return HTMLResponse(not_found(message)[1], status_code=404)

    def build() -> Built:
        figures = agency_figures(ctx, year, agency_code)
        statuses = latest_statuses(ctx.clickhouse, year.first, year.last, agency_code)
        # A code is shown when the org tree knows it or when it has figures or statuses: an
        # integrator's own code still counts its dossiers (core.figures.scope).
        if agency_code not in figures.tree and not figures.has_data and not statuses:
            return not_found(f"Không tìm thấy cơ quan có mã “{agency_code}” trong năm {year.year}.")
        page = agency_page(figures, ctx.get_plans(), statuses, this_year)
        return 200, render("agency.html", page=page, c=page.common)

    return _serve(ctx, ("/co-quan", agency_code, str(year.year)), build)
