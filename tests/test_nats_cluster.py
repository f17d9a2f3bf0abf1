"""A three-node JetStream cluster under faults (issue 17, "Beyond one machine").

Real components only, as in the fault suite (tests/test_faults.py, whose machinery this reuses):
three nats-servers on loopback clustered by core/messaging/nats_cluster.py, the streams with
three replicas, `motcua up` as a subprocess given all three URLs, a publisher connected to all
three that retries what was not acknowledged. Each fault test kills, restarts or cuts off nodes
while the stream flows, then accounts for every event and every figure and reports a figures line
(tests/fault_figures.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NatsClient

from core.messaging.nats_cluster import LocalCluster, node_name
from core.messaging.nats_server import EmbeddedNats, free_port, nats_server_binary
from core.messaging.streams import StreamReplicasRefused, ensure_streams
from core.messaging.urls import connect_options, servers
from schemas.subjects import EVENTS_STREAM
from tests.fault_figures import report
from tests.helpers import eventually, received
from tests.test_deploy_files import fake_env, nats_conf_variables
from tests.test_faults import (
    MAIN_MONTH,
    ROOT,
    Published,
    Stream,
    Up,
    assert_exact,
    at,
    build_stream,
    figures_line,
    finish,
    publish_all,
    wait_stored,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLUSTER_DEPLOY = ROOT / "deploy" / "nats" / "cluster"


async def connect(cluster: LocalCluster) -> NatsClient:
    """The publisher's (and the checks') connection: all three servers, reconnecting for ever,
    as an integrator is told to connect (doc: MOTCUA_NATS_URL and integrators)."""
    return await nats.connect(
        servers(cluster.url), max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )


async def start_cluster(root: Path, dial: Callable[[int, int], int] | None = None) -> Any:
    cluster = LocalCluster(root, 3, dial=dial)
    await cluster.start()
    nc = await connect(cluster)
    await ensure_streams(nc.jetstream(), 3)
    return cluster, nc


async def started_up(up: Up) -> None:
    """`motcua up` started and answering: the stream is then published to a running ingest,
    which keeps up with it, so a fault timed by the stored count lands while events flow."""
    up.start()

    async def answers() -> bool:
        await asyncio.sleep(0.2)
        return await up.stored() is not None

    await eventually(answers, timeout=180)


def up_for(tmp_path: Path, cluster: LocalCluster, **env: str) -> Up:
    # MOTCUA_STREAM_REPLICAS=3: `motcua up` declares the streams too, and with the default (1)
    # it would scale them down to one copy.
    return Up(tmp_path / "data", cluster.url, env={"MOTCUA_STREAM_REPLICAS": "3", **env})


async def close_quietly(nc: NatsClient) -> None:
    """Close a client without letting its close keep the nodes running: a client of a node
    that was cut off can fail or wait on its flush, and a failed test then left three
    nats-servers behind it."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(nc.close(), 10)


async def try_or_none(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except Exception:  # a node down, a leader being elected: ask again
        return None


async def events_leader(nc: NatsClient) -> int | None:
    info = await try_or_none(nc.jetstream().stream_info(EVENTS_STREAM))
    leader = info.cluster.leader if info and info.cluster else None
    names = [node_name(i) for i in range(3)]
    return names.index(leader) if leader in names else None


async def replicas_current(nc: NatsClient) -> bool:
    """The events stream has a leader and both other replicas caught up with it."""
    info = await try_or_none(nc.jetstream().stream_info(EVENTS_STREAM))
    if info is None or info.cluster is None or not info.cluster.leader:
        return False
    peers = info.cluster.replicas or []
    return len(peers) == 2 and all(p.current and not p.offline for p in peers)


def stream_copies(cluster: LocalCluster) -> list[int | None]:
    """Messages in each node's own copy of the events stream (its /jsz), None if it has none."""
    counts: list[int | None] = []
    for index in range(len(cluster.nodes)):
        body = _get_json(f"{cluster.monitor_url(index)}/jsz?streams=true") or {}
        found = [
            s["state"]["messages"]
            for account in body.get("account_details", [])
            for s in account.get("stream_detail", [])
            if s["name"] == EVENTS_STREAM
        ]
        counts.append(found[0] if found else None)
    return counts


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.load(answer)
    except (OSError, ValueError):
        return None


async def settle(cluster: LocalCluster, nc: NatsClient) -> list[int | None]:
    """After the fault: the cluster whole again, every copy of the stream equal (the node that
    was down or cut off caught up). Returns the copies' message counts."""
    await cluster.wait_formed(timeout=120)
    await eventually(lambda: replicas_current(nc), timeout=120)

    async def equal() -> bool:
        copies = await asyncio.to_thread(stream_copies, cluster)
        return None not in copies and len(set(copies)) == 1

    await eventually(equal, timeout=120)
    return await asyncio.to_thread(stream_copies, cluster)


async def account(
    name: str,
    up: Up,
    cluster: LocalCluster,
    nc: NatsClient,
    stream: Stream,
    published: Published,
    started: float,
    **extra: Any,
) -> None:
    """The fault suite's accounting and assertions, plus the cluster's own: three replicas that
    agree, and a figures line."""
    copies = await settle(cluster, nc)
    print(f"settled at {time.monotonic() - started:.0f}s")
    store, outcome, figures = await finish(up, nc.jetstream(), stream)
    info = await nc.jetstream().stream_info(EVENTS_STREAM)
    report(
        figures_line(
            name,
            stream,
            published,
            outcome,
            figures,
            started,
            **extra,
            replicas=info.config.num_replicas,
            copies="/".join(map(str, copies)),
        )
    )
    assert info.config.num_replicas == 3
    assert_exact(stream, outcome, store, figures[1])


# ---------------------------------------------------------------------------------------------
# a. The events stream's leader killed mid-stream


async def test_stream_leader_killed_mid_stream_then_restarted(tmp_path: Path) -> None:
    # Catches: a PubAck given before a quorum held the event (lost with the leader); clients
    # that reconnect only to the URL they started with (ingest and publisher stall while the
    # node is down); the durable consumer's delivered-but-unacked messages lost, or redelivered
    # and stored twice, when its leader moves; a restarted node that does not catch up.
    started = time.monotonic()
    stream = build_stream(
        17, 100_000, ("CLUSTA", "CLUSTB"), duplicates=500, conflicts=25, invalid=25
    )
    cluster, nc = await start_cluster(tmp_path / "nats")
    up = up_for(tmp_path, cluster, MOTCUA_INGEST_RECENT_EVENTS="20000")
    try:
        await started_up(up)
        publisher = asyncio.create_task(publish_all(nc, stream, rate=5_000))
        stored_before = await wait_stored(up, 0.3 * len(stream.unique))
        leader = await events_leader(nc)
        assert leader is not None
        assert not publisher.done()  # mid-stream
        cluster.kill_node(leader)
        down_at = time.monotonic()
        print(f"killed {node_name(leader)} at {down_at - started:.0f}s, stored {stored_before}")
        # the two others elect a leader among themselves and the ingest goes on with them
        await eventually(lambda: _leader_other_than(nc, leader), timeout=60)
        stored_down = await wait_stored(up, stored_before + 5_000)
        await asyncio.sleep(max(0.0, 5 - (time.monotonic() - down_at)))  # down at least 5 s
        await cluster.start_node(leader)
        print(f"restarted at {time.monotonic() - started:.0f}s, stored {stored_down}")
        published = await publisher
        print(
            f"published at {time.monotonic() - started:.0f}s, retries {published.retries}, "
            f"reconnects {published.reconnects}"
        )
        await account(
            "cluster_leader_kill",
            up,
            cluster,
            nc,
            stream,
            published,
            started,
            killed=node_name(leader),
            stored_at_kill=stored_before,
            stored_while_down=stored_down - stored_before,
        )
    finally:
        up.stop()
        await close_quietly(nc)
        cluster.stop()


async def _leader_other_than(nc: NatsClient, old: int) -> bool:
    leader = await events_leader(nc)
    return leader is not None and leader != old


# ---------------------------------------------------------------------------------------------
# b. A rolling restart of the three nodes


async def test_rolling_restart_of_all_three_nodes(tmp_path: Path) -> None:
    # Catches: what a node restart costs beyond its own downtime: a node that rejoins without
    # the events published while it was down (then a leader, it would serve a short stream),
    # the consumer's state not surviving three leader moves, clients that stop reconnecting
    # after the first node they knew has gone away twice. 25,000 events at 1,000/s flow for
    # the whole roll (three stops, restarts and catch-ups, some 13 s on a loaded 2-core
    # machine); more events would only lengthen the calm after it.
    started = time.monotonic()
    stream = build_stream(18, 25_000, ("CLUSTR",), duplicates=250, conflicts=15, invalid=15)
    cluster, nc = await start_cluster(tmp_path / "nats")
    up = up_for(tmp_path, cluster, MOTCUA_INGEST_RECENT_EVENTS="2000")
    restarts = 0
    try:
        await started_up(up)
        publisher = asyncio.create_task(
            publish_all(nc, stream, rate=1_000, reconnect=lambda: connect(cluster))
        )
        before = await wait_stored(up, 0.1 * len(stream.unique))
        for index in range(3):
            # as an operator rolls a cluster: one node at a time, the next once it caught up
            assert not publisher.done()  # mid-stream
            cluster.stop_node(index)
            print(f"stopped {node_name(index)} at {time.monotonic() - started:.0f}s")
            await asyncio.sleep(2)
            await cluster.start_node(index)
            await cluster.wait_formed(timeout=120)
            await eventually(lambda: replicas_current(nc), timeout=120)
            restarts += 1
            before = await wait_stored(up, before + 1_000)  # the ingest kept going
        published = await publisher
        print(
            f"published at {time.monotonic() - started:.0f}s, retries {published.retries}, "
            f"reconnects {published.reconnects}"
        )
        await account(
            "cluster_rolling_restart",
            up,
            cluster,
            nc,
            stream,
            published,
            started,
            restarts=restarts,
        )
        assert restarts == 3
    finally:
        up.stop()
        await close_quietly(nc)
        cluster.stop()


# ---------------------------------------------------------------------------------------------
# c. One node cut off from the others


class RouteProxies:
    """A TCP proxy on each path node i takes to node j's route port, in a thread and event loop
    of its own (the test's loop is busy publishing). Cutting a node closes every route
    connection to or from it and refuses new ones until it is healed: the node keeps running and
    keeps its clients, but cannot reach the cluster, as behind a failed switch port."""

    def __init__(self, targets: dict[tuple[int, int], Callable[[], int]]) -> None:
        self.targets = targets
        self.ports = {pair: free_port() for pair in targets}
        self.cut_off: set[int] = set()
        self.open: dict[tuple[int, int], set[asyncio.StreamWriter]] = {p: set() for p in targets}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=10)

    async def _listen(self) -> None:
        for pair, port in self.ports.items():
            await asyncio.start_server(
                lambda r, w, pair=pair: self._handle(pair, r, w), "127.0.0.1", port
            )

    async def _handle(
        self, pair: tuple[int, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.cut_off & set(pair):
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.targets[pair]())
        except OSError:
            writer.transport.abort()
            return
        if self.cut_off & set(pair):
            # cut while this one was connecting: cut() saw no writers of it to close (a route
            # that slipped through so kept the cut node in the others' routes in a CI run)
            for w in (writer, up_writer):
                w.transport.abort()
            return
        self.open[pair] |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self.open[pair] -= {writer, up_writer}
            for w in (writer, up_writer):
                w.transport.abort()

    def cut(self, node: int) -> int:
        """Cut the node off; returns how many route connections were open through it."""

        def cut() -> int:
            self.cut_off.add(node)
            closed = 0
            for pair, writers in self.open.items():
                if node in pair:
                    closed += len(writers) // 2
                    for w in list(writers):
                        w.transport.abort()
            return closed

        return asyncio.run_coroutine_threadsafe(_call(cut), self.loop).result(timeout=10)

    def heal(self, node: int) -> None:
        self.loop.call_soon_threadsafe(self.cut_off.discard, node)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


async def _call(function: Callable[[], int]) -> int:
    return function()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


def route_peers(cluster: LocalCluster, index: int) -> set[str] | None:
    """The servers this node has a route to (its /routez); None while it does not answer."""
    body = _get_json(f"{cluster.monitor_url(index)}/routez")
    if body is None:
        return None
    return {r.get("remote_name", "") for r in body.get("routes") or []}


async def test_one_node_cut_off_from_the_others_then_back(tmp_path: Path) -> None:
    # Catches: a cut-off node that still acknowledges publishes (a minority leader: lost when
    # the majority's history overrides its own), a majority that stops taking events while one
    # node is unreachable, and what the cut-off node accepted but could not replicate coming
    # back as duplicates once it rejoins. 40,000 events at 1,000/s span the cut (the others'
    # detection and election, then 8 s) and the rejoin, which 100,000 would only follow with
    # calm; the leader is the node cut off, so the fault lands on the stream's writes.
    started = time.monotonic()
    stream = build_stream(19, 40_000, ("CLUSTP",), duplicates=400, conflicts=20, invalid=20)
    proxies: RouteProxies | None = None
    holder: dict[str, LocalCluster] = {}

    def dial(i: int, j: int) -> int:
        assert proxies is not None
        return proxies.ports[i, j]

    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    proxies = RouteProxies({p: (lambda j=p[1]: holder["c"].route_ports[j]) for p in pairs})
    proxies.start()
    cluster = LocalCluster(tmp_path / "nats", 3, dial=dial)
    holder["c"] = cluster
    up = up_for(tmp_path, cluster, MOTCUA_INGEST_RECENT_EVENTS="2000")
    nc: NatsClient | None = None
    try:
        await cluster.start()

        # every route runs through the proxies: each node reaches the two others, and only so
        # (the meta group forms before the last route is up: wait for that one too, before the
        # streams are declared, or their requests may go down a route not yet there)
        def full_mesh() -> bool:
            return all(
                route_peers(cluster, i) == {node_name(j) for j in range(3) if j != i}
                for i in range(3)
            )

        await eventually(full_mesh, timeout=60)
        nc = await connect(cluster)
        await ensure_streams(nc.jetstream(), 3)
        await started_up(up)
        publisher = asyncio.create_task(
            publish_all(nc, stream, rate=1_000, reconnect=lambda: connect(cluster))
        )
        before = await wait_stored(up, 0.2 * len(stream.unique))
        cut = await events_leader(nc)
        assert cut is not None and not publisher.done()
        closed = proxies.cut(cut)
        print(f"cut {node_name(cut)} at {time.monotonic() - started:.0f}s, stored {before}")

        # the cut is real: no route between the node and the two others, either way
        # (each side notices on its own, the other a moment later: wait for both)
        def cut_off() -> bool:
            return route_peers(cluster, cut) == set() and all(
                node_name(cut) not in (route_peers(cluster, other) or set())
                for other in range(3)
                if other != cut
            )

        await eventually(cut_off, timeout=60)
        # asked of a node on the majority side: a client of the cut-off node (the publisher's
        # may be one) stays connected to it, and its JetStream requests go nowhere until the heal
        witness = await nats.connect(cluster.urls[(cut + 1) % 3])
        try:
            await eventually(lambda: _leader_other_than(witness, cut), timeout=60)
        finally:
            await witness.close()
        await asyncio.sleep(8)
        assert not publisher.done()  # the stream flowed through the whole cut
        proxies.heal(cut)
        print(f"healed at {time.monotonic() - started:.0f}s")
        try:
            await wait_stored(up, before + 1_000)
        except AssertionError:
            if publisher.done():  # the publisher's own failure, not the system's
                publisher.result()
            raise
        published = await publisher
        print(
            f"published at {time.monotonic() - started:.0f}s, retries {published.retries}, "
            f"reconnects {published.reconnects}"
        )
        await account(
            "cluster_partition",
            up,
            cluster,
            nc,
            stream,
            published,
            started,
            cut_off=node_name(cut),
            routes_cut=closed,
        )
    finally:
        up.stop()
        if nc is not None:
            await close_quietly(nc)
        cluster.stop()
        proxies.close()


# ---------------------------------------------------------------------------------------------
# The pieces: replicas refused in one line, multi-URL options, `motcua up --nats-cluster 3`,
# the deploy configs


async def test_replicas_beyond_the_servers_are_refused_in_one_line(tmp_path: Path) -> None:
    # Catches: MOTCUA_STREAM_REPLICAS=3 on one server (or 5 on three) failing with a traceback
    # or a JetStream error code the operator must look up, instead of one line that says what
    # to change; and a refused update that leaves the stream changed.
    server = EmbeddedNats(tmp_path / "single", port=free_port())
    await server.start()
    try:
        nc = await nats.connect(server.url)
        with pytest.raises(StreamReplicasRefused) as refused:
            await ensure_streams(nc.jetstream(), 3)
        message = str(refused.value)
        assert "\n" not in message
        assert "MOTCUA_STREAM_REPLICAS=3" in message and "non-clustered" in message
        await ensure_streams(nc.jetstream(), 1)  # the default still works
        await nc.close()
    finally:
        server.stop()
    cluster = LocalCluster(tmp_path / "three", 3)
    await cluster.start()
    try:
        nc = await connect(cluster)
        await ensure_streams(nc.jetstream(), 3)
        with pytest.raises(StreamReplicasRefused, match="no suitable peers") as refused:
            await ensure_streams(nc.jetstream(), 5)
        assert "\n" not in str(refused.value)
        info = await nc.jetstream().stream_info(EVENTS_STREAM)
        assert info.config.num_replicas == 3
        await nc.close()
    finally:
        cluster.stop()


async def test_a_url_list_is_one_cluster_with_one_identity() -> None:
    # Catches: a comma-separated MOTCUA_NATS_URL handed to nats-py as one (unparseable) server,
    # credentials left in the URLs (a server the cluster announces has none: the reconnection
    # to it would be refused), and two URLs with different users silently taking the first.
    url = "nats://ingest:p%40ss@a:4222, nats://b:4223,nats://ingest:p%40ss@c:4224"
    assert servers(url) == ["nats://a:4222", "nats://b:4223", "nats://c:4224"]
    assert connect_options(url) == {
        "inbox_prefix": "_INBOX_ingest",
        "user": "ingest",
        "password": "p@ss",
    }
    assert connect_options("nats://a:1") == {}
    for bad in (
        "nats://u:x@a:1,nats://v:x@b:1",
        "nats://a:1,tls://b:1",
        "nats://u:x@a,nats://u:y@b",
    ):
        with pytest.raises(ValueError):
            connect_options(bad)


async def test_up_with_a_local_three_node_cluster_survives_a_node(tmp_path: Path) -> None:
    # Catches: `motcua up --nats-cluster 3` starting nodes that do not form one cluster, nodes
    # without the single server's users, streams left at one replica, a banner without the
    # three URLs, and parts of the system tied to the node that dies (events published after
    # its death never stored).
    data, port, key = tmp_path / "data", free_port(), "k" * 40
    nats_port = _three_free_ports()
    env = {
        **os.environ,
        "MOTCUA_DATA_DIR": str(data),
        "MOTCUA_API_PORT": str(port),
        "MOTCUA_NATS_PORT": str(nats_port),
        "MOTCUA_BOOTSTRAP_ADMIN_KEY": key,
        "MOTCUA_METRICS_INTERVAL": "30",
    }
    env.pop("MOTCUA_NATS_URL", None)
    env.pop("MOTCUA_STREAM_REPLICAS", None)
    out = tmp_path / "up.out"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "motcua.cli", "up", "--nats-cluster", "3"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    nc: NatsClient | None = None
    try:
        await eventually(lambda: "Ctrl-C" in out.read_text() or proc.poll() is not None, 120)
        banner = out.read_text()
        assert proc.poll() is None, banner
        urls = [f"nats://127.0.0.1:{nats_port + i}" for i in range(3)]
        for i, url in enumerate(urls):
            assert f"{node_name(i)}  {url}" in banner
        users = json.loads((data / "nats" / "credentials.json").read_text())["users"]
        admin = ",".join(
            f"nats://admin:{users['admin']['password']}@127.0.0.1:{nats_port + i}" for i in range(3)
        )
        # the nodes have users: no one connects without
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(urls[0], allow_reconnect=False, connect_timeout=2)
        nc = await nats.connect(
            servers(admin),
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
            **connect_options(admin),
        )
        info = await nc.jetstream().stream_info(EVENTS_STREAM)
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert len(info.cluster.replicas or []) == 2
        js = nc.jetstream()
        first = received("CLUSTU", "U-1", at(MAIN_MONTH, 2), due=at(MAIN_MONTH, 6, 17))
        await js.publish(f"motcua.events.CLUSTU.{first['type']}", json.dumps(first).encode())
        leader = await events_leader(nc)
        assert leader is not None
        pid = int((data / "nats-cluster" / f"node-{leader + 1}" / "nats-server.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        second = received("CLUSTU", "U-2", at(MAIN_MONTH, 3), due=at(MAIN_MONTH, 7, 17))

        async def publish_second() -> bool:
            return (
                await try_or_none(
                    js.publish(
                        f"motcua.events.CLUSTU.{second['type']}",
                        json.dumps(second).encode(),
                        headers={"Nats-Msg-Id": second["event_id"]},
                        timeout=2,
                    )
                )
                is not None
            )

        await eventually(publish_second, timeout=60)
        checker = Up(data, admin, port=port, key=key)

        async def both_stored() -> bool:
            return await checker.stored() == 2

        await eventually(both_stored, timeout=60)
        assert proc.poll() is None
    finally:
        if nc is not None:
            await nc.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out.read_text()[-2000:]
    # every node stopped with it, the one restarted never
    for i in range(3):
        pid_file = data / "nats-cluster" / f"node-{i + 1}" / "nats-server.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            assert (
                not Path(f"/proc/{pid}").exists()
                or b"nats-server" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            )


def _three_free_ports() -> int:
    """A port with the next two free too (`--nats-cluster 3` takes MOTCUA_NATS_PORT … +2)."""
    for _ in range(50):
        base = free_port()
        if base < 65533 and all(_free(base + i) for i in (1, 2)):
            return base
    raise RuntimeError("no three consecutive free ports")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_deploy_cluster_configs_run_as_their_node(tmp_path: Path) -> None:
    # Catches: a node config that nats-server refuses (the compose profile's nodes would exit),
    # an include that no longer finds nats.conf, and nats.conf's values winning over the
    # node's own (every node named motcua-nats-1, or `sync_interval: always` kept).
    names = sorted(p.name for p in CLUSTER_DEPLOY.glob("*.conf"))
    assert names == ["nats-1.conf", "nats-2.conf", "nats-3.conf"]
    env = fake_env(nats_conf_variables())
    for name in names:
        checked = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(CLUSTER_DEPLOY / name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stderr
    # Run node 2's config for real, its addresses moved to free loopback ports (the routes to
    # nats-1/nats-3 just fail to resolve here), and read what it took from where.
    copy = tmp_path / "nats"
    shutil.copytree(CLUSTER_DEPLOY.parent, copy)
    node = copy / "cluster" / "nats-2.conf"
    # its store too (nats-server refuses -sd beside a store_dir in the file)
    node.write_text(node.read_text().replace('"/data/jetstream"', json.dumps(str(tmp_path / "js"))))
    client, monitor, route = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [
            nats_server_binary(),
            "-c",
            str(node),
            "-a",
            "127.0.0.1",
            "-p",
            str(client),
            "-m",
            str(monitor),
            "--cluster",
            f"nats://127.0.0.1:{route}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: _get_json(f"http://127.0.0.1:{monitor}/varz") is not None, 30)
        varz = _get_json(f"http://127.0.0.1:{monitor}/varz")
        jsz = _get_json(f"http://127.0.0.1:{monitor}/jsz")
        assert varz["server_name"] == "motcua-nats-2"
        assert varz["cluster"]["name"] == "motcua"
        assert varz["max_payload"] == 73728  # nats.conf's, included
        assert not jsz["config"].get("sync_always")  # the default, not nats.conf's `always`
        # nats.conf's users, included: no anonymous client
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(
                f"nats://127.0.0.1:{client}", allow_reconnect=False, connect_timeout=2
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
