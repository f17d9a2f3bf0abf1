"""Admission to the keyed routes (/v1/…): how much work one key, and all keys together, may
have running, and no work for a client that has gone (issue 14, finding 4).

200 concurrent figure requests with one viewer key had the API unresponsive for 11 minutes, and
it kept computing long after the clients had given up. Now:
- a key runs `per_key` requests at a time and queues a few more; past them it gets 429, with
  Retry-After;
- `in_flight` keyed requests run in all; one queued longer than `queue_seconds` gets 503, with
  Retry-After;
- when a request's client disconnects, its remaining queries are refused before they start
  (core/storage/pool.py, Abandoned) and the request ends with 499, which nobody reads.

The key is identified by what the client presents, before it is checked: a flood of made-up
keys is answered 401 by the role check, each holding a slot for that long only. The open routes
(the public page, health, the contract) are not limited here: health must answer whatever the
load, and the page has its own cache, single build and fast 404s (services/api/page). The open
data (/v1/open/…, no key) shares the page's cache and is bounded per client address
(AddressRate), since no key identifies its callers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.storage.pool import abandon_with
from services.api.auth import presented_key

# The keyed routes; everything else is open (services/api/auth.py ROUTE_ROLES).
_KEYED_PREFIX = "/v1/"
# Requests that carry no body: their client's going away can be watched for while they run.
_WATCHED_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class AddressRate:
    """Requests per client address to the open data: a token bucket of `burst` requests,
    refilled at `per_second` (a visitor following the page's links, or a script fetching every
    table of every year, stays well inside it; a loop does not). The addresses remembered are
    bounded: the least recently seen is forgotten first. Behind a reverse proxy the address is
    the proxy's unless uvicorn is told to trust its X-Forwarded-For (--forwarded-allow-ips)."""

    per_second: float = 1.0
    burst: int = 60
    max_addresses: int = 10_000
    clock: Callable[[], float] = time.monotonic
    refused: int = 0
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1 or self.max_addresses < 1:
            raise ValueError("an address rate needs per_second > 0, burst >= 1, addresses >= 1")

    def admit(self, address: str) -> int:
        """0: admitted (one request taken from the address's bucket); else the whole seconds
        until the next request would be (a Retry-After)."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
            admitted = tokens >= 1
            self._buckets[address] = (tokens - 1 if admitted else tokens, now)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
            if admitted:
                return 0
            self.refused += 1
            return max(1, math.ceil((1 - tokens) / self.per_second))


@dataclass
class Admission:
    """Each key runs `per_key` requests at a time and queues up to `queue_per_key` more (a
    Grafana board asks for a dozen figures at once with one key); past that it is refused
    with 429. All keys together run `in_flight` at a time; a queued request that has not
    started within `queue_seconds` is refused with 503. A queue is served first come, first
    served, and the keys in turn, so one busy key does not starve the others."""

    per_key: int = 4
    in_flight: int = 16
    queue_per_key: int = 32
    queue_seconds: float = 15.0
    retry_after_seconds: int = 1
    running: Counter[str] = field(default_factory=Counter)
    waiting: dict[str, deque[asyncio.Future[None]]] = field(default_factory=dict)
    # What a test or an operator can read: refusals by status, and requests whose client went
    # away before their answer.
    refused: Counter[int] = field(default_factory=Counter)
    abandoned: int = 0
    # The open data's bound per client address (it has no key to count by).
    open_data: AddressRate = field(default_factory=AddressRate)

    def __post_init__(self) -> None:
        if not 1 <= self.per_key <= self.in_flight or self.queue_per_key < 0:
            raise ValueError("admission needs 1 <= per_key <= in_flight and a queue >= 0")

    def _free(self, identity: str) -> bool:
        return self.running[identity] < self.per_key and self.running.total() < self.in_flight

    async def enter(self, identity: str, gone: asyncio.Event) -> int | None:
        """None: admitted (call leave() when done); else the status to refuse with. Only the
        event loop calls this and leave(), so no lock is needed. `gone`: the client has
        disconnected; a queued request then leaves the queue (status 499)."""
        queue = self.waiting.get(identity)
        if not queue and self._free(identity):
            self.running[identity] += 1
            return None
        if queue is not None and len(queue) >= self.queue_per_key or self.queue_per_key == 0:
            self.refused[429] += 1
            return 429
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(identity, deque()).append(turn)
        disconnected: asyncio.Future[Any] = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait(
                {turn, disconnected},
                timeout=self.queue_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except asyncio.CancelledError:
            if turn.done():
                self.leave(identity)
            else:
                turn.cancel()
                self._forget(identity, turn)
            raise
        finally:
            disconnected.cancel()
        if turn.done():
            return None  # the slot was taken for us (_wake)
        turn.cancel()
        self._forget(identity, turn)
        if gone.is_set():
            self.abandoned += 1
            return 499
        self.refused[503] += 1
        return 503

    def leave(self, identity: str) -> None:
        self.running[identity] -= 1
        if self.running[identity] <= 0:
            del self.running[identity]
        self._wake()

    def _wake(self) -> None:
        """Start queued requests while there is room, one key after another."""
        progressed = True
        while progressed and self.running.total() < self.in_flight:
            progressed = False
            for identity in list(self.waiting):
                queue = self.waiting[identity]
                if queue and self._free(identity):
                    turn = queue.popleft()
                    self.running[identity] += 1
                    turn.set_result(None)
                    progressed = True
                if not queue:
                    del self.waiting[identity]

    def _forget(self, identity: str, turn: asyncio.Future[None]) -> None:
        queue = self.waiting.get(identity)
        if queue is not None and turn in queue:
            queue.remove(turn)
            if not queue:
                del self.waiting[identity]


_REFUSALS = {
    429: (
        "Khóa API này đang có quá nhiều yêu cầu cùng lúc; hãy thử lại sau. "
        "Too many requests in flight for this API key: retry after the Retry-After seconds."
    ),
    503: (
        "Hệ thống đang bận; hãy thử lại sau. "
        "The API is busy with other requests: retry after the Retry-After seconds."
    ),
}


class Admitted:
    """ASGI middleware applying an Admission to the keyed routes."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_KEYED_PREFIX):
            await self.app(scope, receive, send)
            return
        token = presented_key(Request(scope))  # the role check's reading of the headers
        if token is None:  # the role check answers 401
            await self.app(scope, receive, send)
            return
        identity = hashlib.sha256(token.encode()).hexdigest()
        if scope["method"] not in _WATCHED_METHODS:  # a body to read: not watched
            await self._admitted(identity, asyncio.Event(), scope, receive, send)
            return
        # The request's (empty) body is read here and handed on; after it, the server's
        # receive() returns only once the client has gone (or the response is complete).
        first = await receive()
        if first["type"] == "http.disconnect":
            self.admission.abandoned += 1
            return
        gone, disconnected = threading.Event(), asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            disconnected.set()

        pending: list[Message] = [first]

        async def replay() -> Message:
            if pending:
                return pending.pop()
            await disconnected.wait()
            return {"type": "http.disconnect"}

        watcher = asyncio.create_task(watch())
        try:
            with abandon_with(gone):
                await self._admitted(identity, disconnected, scope, replay, send)
        finally:
            watcher.cancel()

    async def _admitted(
        self, identity: str, gone: asyncio.Event, scope: Scope, receive: Receive, send: Send
    ) -> None:
        refusal = await self.admission.enter(identity, gone)
        if refusal == 499:
            return  # nobody to answer
        if refusal is not None:
            await self._refuse(refusal, send)
            return
        unanswered = True  # no answer had started when the client went

        async def tracked(message: Message) -> None:
            nonlocal unanswered
            if message["type"] == "http.response.start" and not gone.is_set():
                unanswered = False
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            self.admission.leave(identity)
            if gone.is_set() and unanswered:
                self.admission.abandoned += 1

    async def _refuse(self, status: int, send: Send) -> None:
        body = json.dumps({"detail": _REFUSALS[status]}, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.admission.retry_after_seconds).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
