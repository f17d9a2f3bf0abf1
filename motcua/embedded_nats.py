"""The NATS `motcua up` runs on: one embedded nats-server, or `--nats-cluster N` local ones as a
JetStream cluster, each with the users of core/messaging/nats_auth.py; their stores and ports."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.messaging.nats_auth import prepare as prepare_nats_users
from core.messaging.nats_cluster import LocalCluster
from core.messaging.nats_server import EmbeddedNats
from core.messaging.urls import RoleUrls
from core.settings import CommonSettings
from core.unshown import Unshown
from motcua.settings import Settings


def cluster_root(settings: CommonSettings) -> Path:
    """`motcua up --nats-cluster`'s node stores (node-1, …); its users stay in <data>/nats."""
    return settings.data_dir / "nats-cluster"


def nats_stores(settings: Settings, nats_cluster: int) -> list[tuple[Path, int]]:
    """Each embedded nats-server's store and client port: none with MOTCUA_NATS_URL, one, or a
    cluster's on consecutive ports from MOTCUA_NATS_PORT."""
    if settings.nats_url:
        return []
    if not nats_cluster:
        return [(settings.data_dir / "nats", settings.nats_port)]
    root = cluster_root(settings)
    return [(root / f"node-{i + 1}", settings.nats_port + i) for i in range(nats_cluster)]


async def start_nats(
    settings: Settings, unshown: Unshown
) -> tuple[EmbeddedNats, RoleUrls, str | None]:
    """The embedded nats-server with authentication: each part connects as its own user
    (core/messaging/nats_auth.py). The first start's credentials are kept before the server
    starts, which can still fail."""
    nats_dir = settings.data_dir / "nats"
    auth = await asyncio.to_thread(prepare_nats_users, nats_dir)
    server = EmbeddedNats(nats_dir, port=settings.nats_port, config_file=auth.config_file)
    notice = auth.notice(server.url)
    if notice:
        unshown.keep(notice)
    try:
        await server.start()
    except BaseException:
        server.stop()  # a server that never became ready is not left running
        raise
    return server, auth.urls(server.url), notice


async def start_nats_cluster(
    settings: Settings, unshown: Unshown, size: int
) -> tuple[LocalCluster, RoleUrls, str | None]:
    """`motcua up --nats-cluster N`: N local nats-servers as one JetStream cluster, each with the
    users the single embedded server gets (its config file, included), and each part of the
    system connected to all N, so a killed node is a failover to watch, not an outage."""
    auth = await asyncio.to_thread(prepare_nats_users, settings.data_dir / "nats")
    cluster = LocalCluster(
        cluster_root(settings),
        size,
        ports=[port for _, port in nats_stores(settings, size)],
        users_config=auth.config_file,
    )
    notice = auth.notice(cluster.url)
    if notice:
        unshown.keep(notice)
    await cluster.start()  # a cluster that never formed is stopped, not left running
    return cluster, auth.urls(cluster.url), notice


def stream_replicas(settings: CommonSettings, nats_cluster: int) -> int:
    """MOTCUA_STREAM_REPLICAS; a local cluster's default is 3 (at most its size)."""
    if nats_cluster and "stream_replicas" not in settings.model_fields_set:
        return min(3, nats_cluster)
    return settings.stream_replicas
