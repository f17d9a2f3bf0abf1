"""What the API needs from the process it runs in, handed over at construction (no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from clickhouse_connect.driver.client import Client
from fastapi import Depends, Request


@dataclass
class ApiContext:
    clickhouse: Client
    nats_ready: Callable[[], Awaitable[bool]]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Live process status, when ingest/metrics run in this process (embedded mode).
    ingest_stats: Callable[[], Any] | None = None
    metrics_status: Callable[[], Any] | None = None
    trigger_metrics: Callable[[], None] | None = None


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]
