"""What the metrics service reports of itself (GET /v1/pipeline's metrics part): each loop's
runs, timings and last error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class MetricsStatus:
    runs: int = 0
    last_run_at: datetime | None = None
    last_run_seconds: float = 0.0
    last_rows_written: int = 0
    last_full: bool = False  # every agency recomputed (else only those that changed)
    last_agencies: int = 0
    # the agencies the last incremental cycle recomputed (at most a few dozen shown)
    last_agency_codes: list[str] = field(default_factory=list)
    last_error: str | None = None
    # The refolder (core/figures/facts.py): how far the facts are behind the parts.
    refold_runs: int = 0
    refold_last_items: int = 0
    refold_last_seconds: float = 0.0
    refold_watermark: datetime | None = None
    refold_last_error: str | None = None
    # The plan monitor (target statuses and alerts), when this service runs one.
    plans_runs: int = 0
    plans_last_run_at: datetime | None = None
    plans_last_run_seconds: float = 0.0
    plans_last_transitions: int = 0
    plans_last_error: str | None = None
    # The plan files (core/plans/source.py): what is in force, and why a changed file is not.
    plans_loaded: list[str] = field(default_factory=list)
    plans_loaded_at: datetime | None = None
    plans_file_error: str | None = None
    # The feed monitor (silent feeds, missing manifests: core/feeds), when it runs.
    feeds_runs: int = 0
    feeds_last_run_at: datetime | None = None
    feeds_last_run_seconds: float = 0.0
    feeds_last_day: date | None = None  # the working day the last evaluation judged
    feeds_last_transitions: int = 0
    feeds_firing: int = 0
    feeds_last_error: str | None = None
    # The reconciler (daily manifests against the stored dossiers: core/figures/completeness)
    reconcile_runs: int = 0
    reconcile_last_run_at: datetime | None = None
    reconcile_last_run_seconds: float = 0.0
    reconcile_last_rows: int = 0
    reconcile_last_error: str | None = None
