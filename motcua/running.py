"""Handles to a system `motcua up` runs (motcua/embedded.py), for the CLI and for tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client
from nats.aio.client import Client as NatsClient

from core.messaging.nats_cluster import LocalCluster
from core.unshown import Unshown
from services.ingest.pipeline import IngestPipeline
from services.metrics.service import MetricsService


@dataclass
class Running:
    """Handles to a running system, for the CLI and for tests."""

    nats_url: str  # comma-separated: every node of `motcua up --nats-cluster`
    api_url: str
    clickhouse: Client
    nats: NatsClient
    # What the API reads through: read-only in the engine (chDB) or by its user (a server).
    api_clickhouse: Client | None = None
    pipeline: IngestPipeline | None = None
    metrics: MetricsService | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # Headers a client of this process's API sends (its admin API key, once keys exist).
    api_headers: dict[str, str] = field(default_factory=dict)
    # The admin API key generated on the first start (no key in the store): printed once.
    new_admin_key: str | None = None
    # The embedded NATS server's first start: the credentials to print, once.
    nats_credentials_notice: str | None = None
    # Every credential created and not printed yet, this start's and earlier ones'.
    unshown: Unshown | None = None
    # `motcua up --nats-cluster`: its nodes, for the banner; None with one server.
    nats_cluster: LocalCluster | None = None
