"""The feed rule's knobs (MOTCUA_METRICS_FEEDS_*): how the silent-feed judgement reads a feed's
history. Here, beside the rule (core/feeds/judge.py FeedRule.from_settings), so the library needs
nothing of the process that runs it; services/metrics/settings.py inherits them."""

from __future__ import annotations

from pydantic import Field, model_validator

from core.settings import CommonSettings


class FeedSettings(CommonSettings):
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

    @model_validator(mode="after")
    def _feeds_history_fits(self) -> FeedSettings:
        if self.metrics_feeds_min_days >= self.metrics_feeds_days:
            raise ValueError(
                "MOTCUA_METRICS_FEEDS_MIN_DAYS must be less than MOTCUA_METRICS_FEEDS_DAYS"
            )
        return self
