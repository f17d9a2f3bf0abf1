"""Reference data read once per change, not once per request.

Every figure request needs the org tree (to expand an agency into its subtree) and often the
procedure catalogue at some date. Loading them folds every record of their table (8-20 ms each
at a province's size), yet they change a few times a year. A load first asks the table for its
stamp, the row count and the newest ingest time (one tiny query: a new record, a correction or
a merge all change it), and reuses what it built for the same store, stamp and date.
The built objects are immutable, so requests share them.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import date
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client

T = TypeVar("T")

# Dates a process asks about are few (today, period ends); a bound keeps a crafted stream of
# dates from growing the cache without end.
_MAX_ENTRIES = 256
_lock = threading.Lock()
_memo: weakref.WeakKeyDictionary[Client, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()


class _View:
    """The stamps read so far inside one one_view(), per client and table."""

    def __init__(self) -> None:
        self.stamps: dict[tuple[int, str], tuple[Any, ...]] = {}
        # held while a stamp is read: the page's threads ask at once, and one asks the store
        self.lock = threading.Lock()


_view: ContextVar[_View | None] = ContextVar("reference_view", default=None)


@contextlib.contextmanager
def one_view() -> Iterator[None]:
    """Within, each table's stamp is read once: a request that asks many questions (a page's
    figures and its index) sees one state of the reference data, and asks for it once, not
    once per question. Threads the pool runs the questions on inherit it (pool.run_all)."""
    token = _view.set(_View())
    try:
        yield
    finally:
        _view.reset(token)


def _read_stamp(client: Client, table: str) -> tuple[Any, ...]:
    return tuple(client.query(f"SELECT count(), max(ingested_at) FROM {table}").result_rows[0])


def stamp(client: Client, table: str) -> tuple[Any, ...]:
    """What changes whenever the table's content may have: its rows and newest ingest time."""
    view = _view.get()
    if view is None:
        return _read_stamp(client, table)
    key = (id(client), table)
    with view.lock:
        if key not in view.stamps:
            view.stamps[key] = _read_stamp(client, table)
        return view.stamps[key]


def load(client: Client, table: str, at: date, build: Callable[[], T]) -> T:
    """`build()` for this store, table content and date, built again only after a change."""
    key = (table, stamp(client, table), at)
    with _lock:
        entries = _memo.setdefault(client, {})
        if key in entries:
            return entries[key]  # type: ignore[no-any-return]
    value = build()
    with _lock:
        if len(entries) >= _MAX_ENTRIES:
            entries.clear()
        entries[key] = value
    return value
