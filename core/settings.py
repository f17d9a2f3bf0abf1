"""Configuration shared by every process, read once from the environment (MOTCUA_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOTCUA_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Embedded mode's NATS store and chDB data."
    )
    nats_url: str | None = Field(
        default=None, description="Use this NATS server; unset: start an embedded nats-server."
    )
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Copies JetStream keeps of each stream the product owns (num_replicas): 1 on "
        "one server, 3 on a three-node cluster; more than the cluster's servers is refused.",
    )
    clickhouse_url: str | None = Field(
        default=None,
        description="chdb:///path or http://user:pass@host:8123/db; unset: chDB under data_dir.",
    )
    clickhouse_cluster: str | None = Field(
        default=None,
        description=(
            "Name of the ClickHouse cluster (remote_servers) `motcua migrate` creates the schema "
            "on: replicated tables ON CLUSTER and Distributed tables under the names reads use "
            "(core/storage/cluster.py); unset: one server or chDB."
        ),
    )

    # The metrics service evaluates the plans, the API answers with them, `motcua up` runs both.
    plans_dir: Path | None = Field(
        default=None, description="Extra plan files (YAML) beside the packaged ones"
    )

    def resolved_clickhouse_url(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
