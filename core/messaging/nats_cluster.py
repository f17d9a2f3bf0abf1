"""N nats-servers on loopback as one JetStream cluster: `motcua up --nats-cluster 3`, for anyone
who wants to watch a failover, and the cluster fault tests (tests/test_nats_cluster.py).

Each node is an EmbeddedNats (core/messaging/nats_server.py) with a store, a client port, a
route port and a monitoring port of its own; the cluster block names the cluster and routes every
node to every other. A production cluster is three machines: deploy/nats/cluster/.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.messaging.nats_server import EmbeddedNats, free_port, server_config
from core.private import private_dir

CLUSTER_NAME = "motcua-local"
# A port nothing listens on (TCP "discard", which no test or system here runs).
_NOWHERE = "127.0.0.1:9"


def node_name(index: int) -> str:
    return f"motcua-node-{index + 1}"


class LocalCluster:
    """`size` JetStream servers under `root` (root/node-1, …), clustered.

    `ports`: the client ports (free ones when not given). `users_config`: a config file of users
    every node includes (core/messaging/nats_auth.py's, as the single embedded server gets);
    without it anyone may connect (tests). `dial(i, j)`: the port node i dials to reach node j's
    routes, when something stands between them (a test's proxy that it cuts to partition a
    node); by default node j's route port itself."""

    def __init__(
        self,
        root: Path,
        size: int = 3,
        *,
        ports: Sequence[int] | None = None,
        users_config: Path | None = None,
        dial: Callable[[int, int], int] | None = None,
    ) -> None:
        if size < 3:  # fewer cannot lose a node and keep a quorum
            raise ValueError(f"a JetStream cluster needs 3 nodes or more, not {size}")
        if ports is not None and len(ports) != size:
            raise ValueError(f"a cluster of {size} nodes needs {size} client ports")
        self.root = root
        self.users_config = users_config
        self.route_ports = [free_port() for _ in range(size)]
        self.monitor_ports = [free_port() for _ in range(size)]
        self.dial = dial
        self.nodes = [
            EmbeddedNats(
                root / f"node-{i + 1}",
                port=ports[i] if ports is not None else None,
                config_file=root / f"node-{i + 1}" / "node.conf",
            )
            for i in range(size)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, as MOTCUA_NATS_URL takes a cluster's."""
        return ",".join(self.urls)

    def monitor_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.monitor_ports[index]}"

    def node_config(self, index: int) -> str:
        """One node's config: the users first, then what is this node's own, so its server_name
        wins over the one in the users file (nats-server keeps a key's last value)."""
        node = self.nodes[index]
        assert node.config_file is not None
        dial = self.dial or (lambda _, j: self.route_ports[j])
        routes = [
            f"nats://127.0.0.1:{dial(index, j)}" for j in range(len(self.nodes)) if j != index
        ]
        cluster: dict[str, Any] = {
            "name": CLUSTER_NAME,
            "listen": f"127.0.0.1:{self.route_ports[index]}",
            "routes": routes,
        }
        if self.dial is not None:
            # A node tells the others its route address, and they may dial it directly: past
            # whatever `dial` put in between. Announcing a closed port keeps every route on the
            # configured (dialled) path.
            cluster["advertise"] = _NOWHERE
        text = ""
        if self.users_config is not None:
            # nats-server reads an include relative to the including file, never absolute.
            relative = os.path.relpath(self.users_config, node.config_file.parent)
            text += f"include {json.dumps(relative)}\n"
        rest = (
            f"http: {json.dumps(f'127.0.0.1:{self.monitor_ports[index]}')}\n"
            f"cluster {json.dumps(cluster)}\n"
        )
        return text + server_config(rest, name=node_name(index))

    async def start(self, timeout: float = 60.0) -> None:
        """Start every node, then wait until JetStream has a meta leader that knows them all
        (before that a replicated stream cannot be placed)."""
        for index, node in enumerate(self.nodes):
            private_dir(node.store_dir)
            assert node.config_file is not None
            node.config_file.write_text(self.node_config(index))
        try:
            await asyncio.gather(*(node.start(timeout=timeout) for node in self.nodes))
            await self.wait_formed(timeout)
        except BaseException:
            self.stop()
            raise

    async def start_node(self, index: int, timeout: float = 60.0) -> None:
        await self.nodes[index].start(timeout=timeout)

    def kill_node(self, index: int) -> None:
        """SIGKILL: no lame-duck mode, no flush; the others find out by missed heartbeats."""
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()
        node.process = None

    def stop_node(self, index: int) -> None:
        self.nodes[index].stop()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def jsz(self, index: int) -> dict[str, Any] | None:
        """The node's JetStream monitoring page (/jsz); None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.monitor_url(index)}/jsz", timeout=2) as answer:
                body: dict[str, Any] = json.load(answer)
                return body
        except (OSError, ValueError):
            return None

    def formed(self) -> bool:
        """Every running node follows one meta leader, which sees every node as a current peer
        (only the leader lists its peers)."""
        leaders = set()
        for index, node in enumerate(self.nodes):
            if node.process is None:
                continue
            meta = (self.jsz(index) or {}).get("meta_cluster") or {}
            if not meta.get("leader"):
                return False
            leaders.add(meta["leader"])
            if meta["leader"] == node_name(index):
                peers = meta.get("replicas") or []
                current = [p for p in peers if p.get("current") and not p.get("offline")]
                if len(current) != len(self.nodes) - 1:
                    return False
        # the leader is one of ours and running, so its check above ran
        running = {node_name(i) for i, n in enumerate(self.nodes) if n.process is not None}
        return len(leaders) == 1 and leaders <= running

    async def wait_formed(self, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await asyncio.to_thread(self.formed):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"the {len(self.nodes)} nats-servers under {self.root} formed no JetStream "
                    f"cluster in {timeout:.0f} s"
                )
            await asyncio.sleep(0.2)
