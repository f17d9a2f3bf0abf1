"""Several clients behind one, so that reads run side by side.

A clickhouse-connect client runs one call at a time: the chDB backend holds a lock per client,
so with a single client every API request waited for the one before it, and a slow one (an
`as_of` year, an export) held up every page and figure behind it. The engine itself runs calls
from different clients at once. `ClientPool` hands each call a free client (creating up to
`size`), and `run_all` sends a request's independent queries to it together: the page's figures
and the 766 index's reads no longer queue behind each other.

Only what the readers use is offered (query, command, insert); each call is self-contained (its
settings and parameters travel with it), so which client runs it does not matter.

A call made for work nobody waits for any more is refused with `Abandoned` before it starts or
while it waits for a client (`abandon_with` names the flag: the API sets one per request, set
when its client disconnects; the metrics service one for its life, set when it stops). A
request's later queries never run for nobody (issue 14: 200 requests whose clients had given up
kept the API computing for 11 minutes), and a stop never waits for a whole figure computation.
A query already running ends by itself, within the engine's time limit. `checked` gives a plain
client the same refusal.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.query import QueryResult

T = TypeVar("T")
_THREADS = "clickhouse-pool"
_NESTED = "clickhouse-pool-nested"
# How often a call waiting for a free client looks whether its request is still wanted.
_WAIT_CHECK_SECONDS = 0.1


class Abandoned(Exception):
    """Nobody waits for this call: its request's client disconnected, or its service stops."""


# Set while a request runs (services/api/admission.py); copied into the pool's threads with the
# rest of the caller's context.
_gone: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "motcua_request_gone", default=None
)


@contextlib.contextmanager
def abandon_with(gone: threading.Event) -> Iterator[None]:
    """Calls made in this context (and in the threads it hands work to) are refused once
    `gone` is set."""
    token = _gone.set(gone)
    try:
        yield
    finally:
        _gone.reset(token)


def _check_wanted() -> None:
    gone = _gone.get()
    if gone is not None and gone.is_set():
        raise Abandoned("nobody waits for this work any more: its remaining queries are not run")


class ClientPool:
    def __init__(self, factory: Callable[[], Client], size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one client")
        self.size = size
        self._factory = factory
        self._free: queue.LifoQueue[Client] = queue.LifoQueue()
        self._made: list[Client] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(size, thread_name_prefix=_THREADS)
        # Calls made from inside a call the pool runs (the index's reads inside a page) go to
        # threads of their own: queued behind their callers on the same threads, they could
        # wait for ever once every thread is a caller waiting. They never wait on each other,
        # only for a free client, which a query holds while it runs and never while waiting.
        self._nested = ThreadPoolExecutor(size, thread_name_prefix=_NESTED)

    def _borrow(self) -> Client:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._made) < self.size:
                client = self._factory()
                self._made.append(client)
                return client
        while True:  # every client busy: wait for one, as long as somebody waits for us
            try:
                return self._free.get(timeout=_WAIT_CHECK_SECONDS)
            except queue.Empty:
                _check_wanted()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        _check_wanted()
        client = self._borrow()
        try:
            _check_wanted()
            return getattr(client, name)(*args, **kwargs)
        finally:
            self._free.put(client)

    def query(self, *args: Any, **kwargs: Any) -> QueryResult:
        return cast(QueryResult, self._call("query", *args, **kwargs))

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("command", *args, **kwargs)

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("insert", *args, **kwargs)

    def map(self, calls: Sequence[Callable[[], T]], nested: bool = False) -> list[T]:
        """Run the calls side by side (each borrows its own client); results in order. Each
        runs in a copy of the caller's context, as if the caller ran it (memo.one_view).
        `nested`: the caller is itself a call the pool runs."""
        contexts = [contextvars.copy_context() for _ in calls]
        executor = self._nested if nested else self._executor
        return list(executor.map(contextvars.Context.run, contexts, calls))

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self._nested.shutdown(wait=False)
        with self._lock:
            for client in self._made:
                client.close()
            self._made.clear()


class _Checked:
    """A client whose calls are refused once nobody waits for them (abandon_with)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def query(self, *args: Any, **kwargs: Any) -> QueryResult:
        _check_wanted()
        return self._client.query(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        _check_wanted()
        return self._client.command(*args, **kwargs)

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        _check_wanted()
        return self._client.insert(*args, **kwargs)

    def close(self) -> None:
        self._client.close()

    def __getattr__(self, name: str) -> Any:  # settings, database: what the readers look at
        return getattr(self._client, name)


def checked(client: Client) -> Client:
    """`client`, its query, command and insert refused once nobody waits for them."""
    return cast(Client, _Checked(client))


def pooled(factory: Callable[[], Client], size: int) -> Client:
    """A pool typed as the client its users take (they call query, command and insert only)."""
    return cast(Client, ClientPool(factory, size))


def run_all(client: Client, calls: Sequence[Callable[[], T]]) -> list[T]:
    """The calls' results, in order: side by side on a pool, one after another on a client.
    Inside a call the pool already runs, on the pool's second set of threads; inside one of
    those, one after another (two levels are all the readers use)."""
    here = threading.current_thread().name
    innermost = here.startswith(_NESTED)  # (a _NESTED name starts with _THREADS too)
    if isinstance(client, ClientPool) and client.size > 1 and len(calls) > 1 and not innermost:
        return client.map(calls, nested=here.startswith(_THREADS))
    return [call() for call in calls]
