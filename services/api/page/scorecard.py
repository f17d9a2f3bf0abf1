"""One year's province scorecard: the figures and the plan targets' statuses, read from the store
once per cache period (services/api/cache.py) and shared by everything drawn from them.

The page at `/` and the open data (/v1/open/…) are both made from the same Scorecard, so they
cannot disagree, and a burst of requests for either costs one reading of the store per period
and one rendering of each answer (`once`), whatever the number of visitors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from core.plans.model import Plan
from services.api.deps import ApiContext
from services.api.page.figures import ProvinceFigures, Year, province_figures
from services.api.page.pages import ProvincePage, province_page
from services.api.page.targets import Status, latest_statuses

T = TypeVar("T")


@dataclass
class Scorecard:
    figures: ProvinceFigures
    statuses: list[Status]
    plans: Mapping[str, Plan]  # as loaded when the figures were read
    this_year: int
    computed_at: datetime  # when the store was read
    _made: dict[str, Any] = field(default_factory=dict, repr=False)
    # reentrant: a rendering asks for the page view, itself made once
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def year(self) -> Year:
        return self.figures.year

    @property
    def page(self) -> ProvincePage:
        return self.once(
            "page", lambda: province_page(self.figures, self.plans, self.statuses, self.this_year)
        )

    def once(self, name: str, make: Callable[[], T]) -> T:
        """`make()`, made once for this scorecard: the page's HTML, an open data table."""
        with self._lock:
            if name not in self._made:
                self._made[name] = make()
            return cast(T, self._made[name])


def scorecard(ctx: ApiContext, year: Year, this_year: int) -> Scorecard:
    """The year's scorecard, from the cache while it is younger than its period."""

    def build() -> tuple[int, Scorecard]:
        computed_at = ctx.clock()
        figures = province_figures(ctx, year)
        statuses = latest_statuses(ctx.clickhouse, year.first, year.last)
        return 200, Scorecard(figures, statuses, ctx.get_plans(), this_year, computed_at)

    if ctx.page_cache is None:
        return build()[1]
    key = ("scorecard", year.year, this_year)
    now = ctx.clock().timestamp()
    return ctx.page_cache.get(key, now, build, clock=lambda: ctx.clock().timestamp()).body
