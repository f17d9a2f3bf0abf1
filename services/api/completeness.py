"""The completeness of a figure's population, for the figure routes and the public page
(issue 18): what the source systems reported in their daily manifests against what motcua holds,
over the figure's period and agency scope, judged at the figure's instant.

One query per answer (core/figures/completeness.py summary_by_agency), run beside the
figure's own reads, never per row or group: the answer keeps it per agency, so a group, or an
agency with its subtree, is summed from it.

The judgments it reads change only when the reconciler writes (a step a minute), while every
figure request would ask again: ~11 ms of engine time each, 10-30 % of a figure's answer. So the
answers are kept (CompletenessCache): a live one for LIVE_SECONDS, an as-of one for good (the
judgments made by a settled instant do not change).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol

from clickhouse_connect.driver.client import Client

from core.figures.completeness import Completeness, ScopeCompleteness, summary_by_agency
from core.zone import VN
from services.api.schemas import Completeness as CompletenessOut

# How long a live answer is kept: well within the reconciler's step (60 s by default), so a
# new judgment shows within this much more.
LIVE_SECONDS = 15.0
# An instant within this much of the API's clock is a live question, keyed by its ended days.
_LIVE_WINDOW = timedelta(seconds=60)


class CompletenessCache:
    """Completeness answers by question, bounded in number (least recently used dropped)."""

    def __init__(self, live_seconds: float = LIVE_SECONDS, size: int = 512) -> None:
        self._live_seconds = live_seconds
        self._size = size
        self._kept: OrderedDict[tuple[object, ...], tuple[float, ScopeCompleteness]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], live: bool) -> ScopeCompleteness | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or (live and time.monotonic() - kept[0] > self._live_seconds):
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: tuple[object, ...], answer: ScopeCompleteness) -> None:
        with self._lock:
            self._kept[key] = (time.monotonic(), answer)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)


class Asking(Protocol):
    """What scope_completeness reads of the API's context (deps.ApiContext, which holds a
    CompletenessCache and so sits above this module)."""

    @property
    def clickhouse(self) -> Client: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def completeness_threshold(self) -> float: ...

    @property
    def completeness_cache(self) -> CompletenessCache | None: ...


def scope_completeness(
    ctx: Asking, first: date, last: date, agencies: Sequence[str], at: datetime
) -> ScopeCompleteness:
    """The scope's completeness over [first, last] as judged by `at` (its ended days only), kept
    per agency. `agencies`: the scope after expanding the org tree; () for the whole province."""
    live = abs(ctx.clock() - at) <= _LIVE_WINDOW
    # a live question by the days it counts (they move at local midnight), an as-of one by its
    # instant
    when: object = (at - timedelta(days=1)).astimezone(VN).date() if live else at
    key = (first, last, tuple(agencies), when, ctx.completeness_threshold)
    cache = ctx.completeness_cache
    if cache is not None and (kept := cache.get(key, live)) is not None:
        return kept
    answer = summary_by_agency(
        ctx.clickhouse, first, last, at, tuple(agencies), ctx.completeness_threshold
    )
    if cache is not None:
        cache.put(key, answer)
    return answer


def out(completeness: Completeness) -> CompletenessOut:
    return CompletenessOut(**completeness.as_dict())
