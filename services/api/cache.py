"""The public pages, and the province figures behind them and the open data, built at most
once per key every `seconds`. Below both the page and the ApiContext (deps.py) that holds it.

`/` and `/co-quan/{code}` are open to everyone and each costs a dozen queries (0.3-0.6 s on the
simulated province, more with years of data). In `motcua up` the API shares one process with the
ingest: a burst of citizens (a press article, a bot) must not take the CPU the ingest needs. So a
page is built once and served from memory until it is `seconds` old, the same lag the
Cache-Control header already allows browsers; the page states the time of its figures. Requests
that arrive while a page is being built wait for that build instead of starting their own, or,
when an older copy exists, get that copy at once (stale while it is rebuilt).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    built_at: float
    status: int
    body: T  # the HTML, or what several answers are drawn from (page/scorecard.py)


class PageCache:
    def __init__(self, seconds: float, *, max_pages: int = 512) -> None:
        self.seconds = seconds
        self._max_pages = max_pages
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, Page[Any]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self.builds = 0

    def get(
        self,
        key: Hashable,
        now: float,
        build: Callable[[], tuple[int, T]],
        clock: Callable[[], float] | None = None,
    ) -> Page[T]:
        """The page for `key`: cached if younger than `seconds` at `now`, else built once; its
        age counts from the end of its build (`clock`, the time `now` was read from; without it,
        `now` plus how long the build took)."""
        if self.seconds <= 0:
            self.builds += 1
            return Page(now, *build())
        with self._lock:
            page = self._fresh(key, now)
            if page is not None:
                return cast(Page[T], page)
            stale = self._pages.get(key)
            if stale is not None and key in self._building:
                # Another request is rebuilding it: the last page meanwhile, not a wait (a build
                # under load takes longer than a visitor should).
                return cast(Page[T], stale)
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:  # built by the request this one waited for
                page = self._fresh(key, now)
                if page is not None:
                    return cast(Page[T], page)
            # Stamped when the build ends: stamped at its start, a build slower than `seconds`
            # (a loaded machine) would leave a page already stale, and every request would
            # build it again.
            started = time.monotonic()
            try:
                status, body = build()
            except BaseException:
                # Left marked as building, the old page would be served forever, never rebuilt.
                with self._lock:
                    self._building.pop(key, None)
                raise
            built = clock() if clock else now + (time.monotonic() - started)
            made = Page(built, status, body)
            with self._lock:
                self.builds += 1
                self._pages[key] = made
                self._pages.move_to_end(key)
                while len(self._pages) > self._max_pages:  # unknown codes must not grow it
                    self._pages.popitem(last=False)
                self._building.pop(key, None)
        return made

    def _fresh(self, key: Hashable, now: float) -> Page[Any] | None:
        page = self._pages.get(key)
        if page is None or now - page.built_at >= self.seconds:
            return None
        self._pages.move_to_end(key)
        return page
