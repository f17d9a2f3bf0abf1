"""The `motcua` command's settings: every MOTCUA_* variable, the composition of each process's
own (services/ingest/settings.py, services/metrics/settings.py, services/api/settings.py) and
what only the command reads (the embedded NATS port, `motcua replay`'s chunks, Grafana's key).

One class, so `motcua up`, `motcua migrate` and the one-service commands read and check the same
environment (a value one process refuses stops every command, as before the split)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.api.settings import ApiSettings
from services.ingest.settings import IngestSettings
from services.metrics.settings import MetricsSettings


class Settings(IngestSettings, MetricsSettings, ApiSettings):
    """Everything `motcua up` needs (all MOTCUA_* variables)."""

    nats_port: int = 4222

    replay_chunk_events: int = Field(
        default=2_000_000,
        ge=10_000,
        description="`motcua replay` refills each derived table about this many events at a "
        "time: its peak memory follows this, not the history (a smaller machine sets less)",
    )
    replay_chunk_parts: int = Field(
        default=500_000,
        ge=10_000,
        description="`motcua replay` refolds the facts about this many stored parts at a time",
    )
    # The viewer key Grafana's API datasource reads the boards' figures with (compose passes the
    # same value to Grafana): `motcua migrate` makes sure of it like the admin key.
    grafana_api_key: SecretStr | None = None
