"""Metrics service knobs (MOTCUA_METRICS_*); the feed rule's (MOTCUA_METRICS_FEEDS_*) are the
library's (core/feeds/settings.py), inherited."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from core.feeds.settings import FeedSettings


class MetricsSettings(FeedSettings):
    metrics_interval: float = Field(default=5.0, gt=0, description="Seconds between computations")
    metrics_max_busy_share: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="At most this share of the time goes to computing figures: after a cycle "
        "that took t seconds the next waits max(interval, t × (1/share − 1)), so on a busy "
        "store the snapshots come less often instead of taking the CPU from ingest",
    )
    metrics_full_snapshot_every: float = Field(
        default=3600.0, gt=0, description="Seconds between snapshots of unchanged figures too"
    )
    metrics_refold_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between refolder steps: how far the figures' facts may trail the "
        "parts (questions fold the rest from the parts meanwhile)",
    )
    metrics_refold_max_busy_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="At most this share of the time goes to refolding: after refolding for t "
        "seconds the next round waits max(refold interval, t × (1/share − 1)); during a burst "
        "the facts fall behind instead of the ingest, and catch up after it",
    )
    metrics_plans_interval: float = Field(
        default=60.0, gt=0, description="Seconds between evaluations of the plans' targets"
    )
    metrics_reconcile_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between steps of the reconciler, which judges each agency-day's "
        "daily manifest against the stored dossiers (issue 18)",
    )
    metrics_feeds_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between evaluations of the feeds (silent feeds, missing manifests)",
    )
    metrics_nice: int = Field(
        default=19,
        ge=-20,
        le=19,
        description="Linux nice value of the engine's threads that run the metrics service's "
        "queries and the views its writes feed (refolder, figures, plans): the ingest and the "
        "API keep the CPU first, and this work takes what they leave. Needs the CAP_SYS_NICE "
        "capability in the engine's process (chDB: this one; a ClickHouse server: cap_add "
        "SYS_NICE), otherwise the engine ignores it",
    )

    def metrics_query_settings(self) -> dict[str, Any]:
        """Engine settings of every query the metrics service sends (its clients')."""
        return {
            "os_threads_nice_value_query": self.metrics_nice,
            "os_threads_nice_value_materialized_view": self.metrics_nice,
        }
