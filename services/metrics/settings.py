"""Metrics service knobs (MOTCUA_METRICS_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


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
    plans_dir: Path | None = Field(
        default=None, description="Extra plan files (YAML) beside the packaged ones"
    )
