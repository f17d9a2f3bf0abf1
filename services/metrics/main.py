"""The metrics process: built from its settings (services/metrics/settings.py), the loop of
services/metrics/service.py (refolder, figures, plans, feeds, reconciler), run until asked to
stop.

`start_metrics` is also what `motcua up` starts in its one process (motcua/embedded.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.feeds import FeedMonitor, FeedRule
from core.figures.reconciler import Reconciler
from core.figures.refolder import Refolder
from core.messaging.client import connect_nats
from core.plans.monitor import PlanMonitor, Publish
from core.plans.source import PlanSource
from core.storage.clickhouse import connect
from core.storage.pool import checked
from services.metrics.service import MetricsService
from services.metrics.settings import MetricsSettings

log = logging.getLogger("motcua")


def jetstream_publisher(nc: NatsClient) -> Publish:
    """Alert transitions to JetStream; the message id lets the stream drop a repeated publish."""
    js = nc.jetstream()

    async def publish(subject: str, body: bytes, msg_id: str) -> None:
        await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}, timeout=5)

    return publish


def connect_metrics(settings: MetricsSettings) -> Client:
    """A client for the metrics service: its queries run below the ingest and the API in the
    engine's CPU priority (MetricsSettings.metrics_nice). On two cores the figures' cycles took
    the CPU the ingest's inserts needed: publish-to-queryable p99 at 5,000 events/s was
    1.6-2.4 s with them at the same priority, 0.7-0.8 s below it (bench/README.md)."""
    return connect(settings.resolved_clickhouse_url(), settings=settings.metrics_query_settings())


def _may_renice() -> bool:
    """Whether this process has CAP_SYS_NICE, without which the engine ignores nice values."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 23 & 1)
    return False


def start_metrics(
    client: Client, settings: MetricsSettings, plans: PlanSource, publish: Publish | None
) -> MetricsService:
    # Its computations' and plan evaluations' queries are refused once it stops (checked): a stop
    # waits for the query in flight, not the whole cycle.
    client = checked(client)
    # beside the refolder below: targets are evaluated on what it has folded
    monitor = PlanMonitor(
        client,
        plans,
        publish=publish,
        full_every=settings.metrics_full_snapshot_every,
        folded_only=True,
    )
    # The refolder gets a client of its own: it runs beside the figure computations, in
    # another thread, and a client is not for two threads at once.
    refolder = Refolder(connect_metrics(settings))
    embedded_engine = settings.resolved_clickhouse_url().startswith("chdb:")
    if embedded_engine and settings.metrics_nice != 0 and not _may_renice():
        log.info(
            "the metrics service's queries run at the ingest's CPU priority: the embedded engine "
            "needs CAP_SYS_NICE to change it (MOTCUA_METRICS_NICE)"
        )
    return MetricsService(
        client,
        refolder=refolder,
        refold_interval=settings.metrics_refold_interval,
        refold_max_busy_share=settings.metrics_refold_max_busy_share,
        interval=settings.metrics_interval,
        max_busy_share=settings.metrics_max_busy_share,
        full_snapshot_every=settings.metrics_full_snapshot_every,
        monitor=monitor,
        plans_interval=settings.metrics_plans_interval,
        plan_source=plans,
        feeds=FeedMonitor(client, FeedRule.from_settings(settings), publish=publish),
        feeds_interval=settings.metrics_feeds_interval,
        reconciler=Reconciler(client),
        reconcile_interval=settings.metrics_reconcile_interval,
    )


async def run(settings: MetricsSettings, stop: asyncio.Event) -> None:
    """`motcua metrics`: compute until `stop` is set."""
    plans = PlanSource(settings.plans_dir)
    client = await asyncio.to_thread(connect_metrics, settings)
    # Alerts go to NATS when it is configured; without it they are still stored and served.
    nc = await connect_nats(settings.nats_url) if settings.nats_url else None
    service = start_metrics(client, settings, plans, jetstream_publisher(nc) if nc else None)
    task = asyncio.create_task(service.run())
    await stop.wait()
    service.stop()
    await task
    if nc is not None:
        await nc.drain()
