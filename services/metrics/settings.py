"""Metrics service knobs (MOTCUA_METRICS_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from core.settings import CommonSettings


class MetricsSettings(CommonSettings):
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
    metrics_feeds_days: int = Field(
        default=20,
        ge=2,
        le=250,
        description="Working days of each feed read per evaluation: its expected volume is the "
        "median of these before the day judged (and before a silence that is still going on)",
    )
    metrics_feeds_min_days: int = Field(
        default=10,
        ge=1,
        description="A feed with fewer working days of history (since its first dossier in the "
        "window) has no expected volume yet, so no silent-feed alert; less than the days read",
    )
    metrics_feeds_ratio: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="A passed working day whose dossiers are fewer than this share of the "
        "expected volume is a silent day",
    )
    metrics_feeds_min_volume: float = Field(
        default=10.0,
        ge=0,
        description="Expected dossiers per working day below which a feed is never alerted on "
        "(a small commune's quiet day is no alert)",
    )
    metrics_feeds_grace_hours: float = Field(
        default=6.0,
        ge=0,
        le=72,
        description="Hours after a working day's local end before it is judged, for events and "
        "manifests that arrive late",
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
    plans_dir: Path | None = Field(
        default=None, description="Extra plan files (YAML) beside the packaged ones"
    )

    @model_validator(mode="after")
    def _feeds_history_fits(self) -> MetricsSettings:
        if self.metrics_feeds_min_days >= self.metrics_feeds_days:
            raise ValueError(
                "MOTCUA_METRICS_FEEDS_MIN_DAYS must be less than MOTCUA_METRICS_FEEDS_DAYS"
            )
        return self

    def metrics_query_settings(self) -> dict[str, Any]:
        """Engine settings of every query the metrics service sends (its clients')."""
        return {
            "os_threads_nice_value_query": self.metrics_nice,
            "os_threads_nice_value_materialized_view": self.metrics_nice,
        }
