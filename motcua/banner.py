"""What `motcua up` prints: its banner (the API, NATS and its nodes, the store), the credentials
created and not shown yet, then it waits for a signal or a failure."""

from __future__ import annotations

import asyncio
import logging

from core.messaging.nats_cluster import node_name
from motcua.running import Running
from motcua.settings import Settings

log = logging.getLogger("motcua")


def admin_key_notice(key: str) -> str:
    return (
        f"Khóa API quản trị (admin), chỉ hiện một lần — hãy lưu lại:\n"
        f"  {key}\n"
        f"  (Authorization: Bearer <khóa>; thêm khóa: POST /v1/keys hoặc `motcua keys`)"
    )


def nats_banner(running: Running) -> str:
    subjects = "subjects motcua.events.<agency>.<type>"
    cluster = running.nats_cluster
    if cluster is None:
        return f"  NATS:         {running.nats_url} ({subjects})\n"
    # Every node, so a watcher can kill one (its pid file is in its store) and see the others
    # take over: /jsz?streams=true names each stream's leader.
    lines = [f"  NATS:         cụm JetStream {len(cluster.nodes)} nút ({subjects})"]
    for index, node in enumerate(cluster.nodes):
        lines.append(
            f"    {node_name(index)}  {node.url}  giám sát {cluster.monitor_url(index)}"
            f"/jsz?streams=true  pid {node.pid_file}"
        )
    return "\n".join(lines) + "\n"


async def serve(settings: Settings, running: Running, stop: asyncio.Event) -> None:
    """The banner and the credentials not shown yet, then wait for a signal or a failure."""
    print(
        f"motcua-monitor đang chạy\n"
        f"  API:          {running.api_url}\n"
        f"  Tài liệu API: {running.api_url}/docs\n"
        f"{nats_banner(running)}"
        f"  ClickHouse:   {settings.resolved_clickhouse_url()}\n"
        f"Ctrl-C để dừng.",
        flush=True,
    )
    if running.unshown is not None:
        credentials = running.unshown.text()
        if credentials:
            print(credentials, flush=True)
        running.unshown.shown()
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, *running.tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in running.tasks:
        if task.done() and not task.cancelled() and task.exception():
            log.error("%s stopped: %r", task.get_name(), task.exception())
    print("Đang dừng…", flush=True)
