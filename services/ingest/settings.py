"""Ingest knobs, read from MOTCUA_INGEST_* (the shared MOTCUA_* settings are inherited)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from core.settings import CommonSettings


class IngestSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="MOTCUA_", extra="ignore")

    ingest_durable: str = Field(default="motcua-ingest", description="JetStream durable consumer")
    ingest_fetch_batch: int = Field(
        default=2_000, ge=1, description="Messages per pull request; two are kept in flight"
    )
    ingest_flush_rows: int = Field(default=10_000, ge=1)
    ingest_flush_interval: float = Field(default=0.2, gt=0)
    ingest_ack_wait: float = Field(default=60.0, gt=0)
    ingest_dead_letter_bytes_per_day: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="Refused bytes kept per integrator and day; past it a dead letter keeps its "
        "reason and size but not its bytes, so a flood of garbage cannot fill the disk",
    )
    ingest_recent_events: int = Field(
        default=500_000,
        ge=0,
        description="Events this process stored whose payload digest it keeps in memory (~230 "
        "bytes each): a copy of one of them is absorbed without asking ClickHouse. Only a "
        "shortcut: every event it does not know is looked up in the store (event_ids)",
    )

    ingest_processes: int = Field(
        default=1,
        ge=1,
        description="Ingest processes bound to the same durable consumer: the consumer's "
        "max_ack_pending, which JetStream counts over all of them, leaves each its own room",
    )

    @property
    def max_pending(self) -> int:
        return 3 * self.ingest_flush_rows

    @property
    def max_ack_pending(self) -> int:
        # Room for what this process normally holds unacked (pending + the batch being flushed +
        # the consumer's two pull requests), times the processes sharing the durable. Above it
        # the server simply pauses deliveries until the next acks; the pull requests wait and
        # are served then.
        per_process = self.max_pending + self.ingest_flush_rows + 2 * self.ingest_fetch_batch
        return per_process * self.ingest_processes

    @model_validator(mode="after")
    def _fetch_fits(self) -> IngestSettings:
        if self.ingest_fetch_batch > self.ingest_flush_rows:
            raise ValueError("MOTCUA_INGEST_FETCH_BATCH must not exceed MOTCUA_INGEST_FLUSH_ROWS")
        return self
