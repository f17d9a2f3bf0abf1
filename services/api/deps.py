"""What the API needs from the process it runs in, handed over at construction (no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from clickhouse_connect.driver.client import Client
from fastapi import Depends, Request

from core.plans.model import Plan
from services.api.admission import Admission
from services.api.cache import PageCache
from services.api.completeness import CompletenessCache
from services.api.keys import KeyStore

if TYPE_CHECKING:
    from core.ingestion.dlq import ReplayReport


@dataclass
class ApiContext:
    clickhouse: Client
    nats_ready: Callable[[], Awaitable[bool]]
    # The API keys every request but the public page and health is checked against
    # (services/api/auth.py); required, so no API can be built without them.
    keys: KeyStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Live process status, when ingest/metrics run in this process (embedded mode).
    ingest_stats: Callable[[], Any] | None = None
    metrics_status: Callable[[], Any] | None = None
    trigger_metrics: Callable[[], None] | None = None
    # `motcua dlq replay` inside this process (core/ingestion/dlq.py, keyword arguments
    # integrator, reason, since, dry_run); None where the API may not write (compose).
    replay_dead_letters: Callable[..., Awaitable[ReplayReport]] | None = None
    # The plans the targets are read against; None: load the packaged ones and $MOTCUA_PLANS_DIR
    # on first use (a bad plan file then fails the request with its file and line). A PlanSource
    # is re-read when a plan file changes, checked at most every two seconds.
    plans: Mapping[str, Plan] | None = None
    # The public pages' server-side cache (services/api/cache.py); None: built per request.
    page_cache: PageCache | None = None
    # How many keyed requests may run, per key and in all (services/api/admission.py).
    admission: Admission = field(default_factory=Admission)
    # A streamed CSV export (the drill-down's) holds at most this many rows, read this many at
    # a time (services/api/drilldown.py).
    export_max_rows: int = 1_000_000
    export_chunk_rows: int = 10_000
    # A figure whose population holds less than this share of the dossiers the source systems
    # reported is marked incomplete (provenance.completeness, the page, the boards: issue 18).
    completeness_threshold: float = 0.99
    # answers kept between reconciler steps (services/api/completeness.py); None: none kept
    completeness_cache: CompletenessCache | None = None

    def get_plans(self) -> Mapping[str, Plan]:
        from core.plans.source import PlanSource

        if self.plans is None:
            self.plans = PlanSource()
        elif isinstance(self.plans, PlanSource):
            self.plans.refresh(force=False)
        return self.plans


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Context = Annotated[ApiContext, Depends(get_context)]
