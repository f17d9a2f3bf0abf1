"""Starting and stopping the services, together (`motcua up`) or one per process (compose).

Embedded mode keeps ingest, metrics and the API in one process because a chDB data directory can
be opened by one process only; a ClickHouse server URL lifts that and nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nats
import uvicorn
from clickhouse_connect.driver.client import Client
from faststream.nats import NatsBroker
from faststream.nats.security import NatsToken, NatsUserPassword
from faststream.security import BaseSecurity
from nats.aio.client import Client as NatsClient
from pydantic import Field, SecretStr

from core.feeds import FeedMonitor, FeedRule
from core.figures.completeness import Reconciler
from core.figures.facts import Refolder
from core.ingestion.dlq import replay_dead_letters
from core.ingestion.reference import subscribe_reference
from core.ingestion.reference_writer import ReferenceWriter
from core.ingestion.writer import EventWriter
from core.messaging.nats_auth import RoleUrls, connect_options, servers
from core.messaging.nats_auth import prepare as prepare_nats_users
from core.messaging.nats_cluster import LocalCluster, node_name
from core.messaging.nats_server import EmbeddedNats, stop_orphan
from core.messaging.streams import ensure_streams
from core.plans.monitor import PlanMonitor, Publish
from core.plans.source import PlanSource
from core.reference.calendar import WorkingCalendar
from core.reference.calendar_store import sync_calendar
from core.reference.seed import seed_if_empty
from core.settings import CommonSettings
from core.storage.clickhouse import QueryLimits, connect
from core.storage.migrate import migrate
from core.storage.pool import checked, pooled
from core.unshown import FILE as UNSHOWN_FILE
from core.unshown import Unshown
from motcua import preflight
from services.api.admission import AddressRate, Admission
from services.api.app import create_app
from services.api.completeness import CompletenessCache
from services.api.deps import ApiContext
from services.api.keys import KeyStore, admin_key_at_start
from services.api.page.cache import PageCache
from services.ingest.consumer import dead_letter_publisher, subscribe
from services.ingest.pipeline import IngestPipeline
from services.ingest.settings import IngestSettings
from services.metrics.service import MetricsService
from services.metrics.settings import MetricsSettings

log = logging.getLogger("motcua")


class Settings(IngestSettings, MetricsSettings):
    """Everything `motcua up` needs (all MOTCUA_* variables)."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_page_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long the public pages (/, /co-quan/…) are served from memory; 0: never",
    )
    api_query_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A query of the API or the public pages is stopped after this many seconds",
    )
    api_query_memory_mb: int = Field(
        default=512,
        gt=0,
        description="A query of the API or the public pages is stopped past this much memory",
    )
    api_query_concurrency: int = Field(
        default=3,
        ge=1,
        le=32,
        description="Queries the API and the public pages run at once (clients in its pool); "
        "more wait for a free one",
    )
    api_requests_per_key: int = Field(
        default=4,
        ge=1,
        description="Requests one API key runs at once; up to 32 more wait their turn, the next "
        "is answered 429 with Retry-After",
    )
    api_requests_in_flight: int = Field(
        default=16,
        ge=1,
        description="Keyed requests (/v1/…) run at once in all; one that waited 15 s is answered "
        "503 with Retry-After (the public page and health are not counted)",
    )
    api_open_data_burst: int = Field(
        default=60,
        ge=1,
        description="Open data requests (/v1/open/…, no key) one client address may make at once "
        "before it is held to MOTCUA_API_OPEN_DATA_PER_SECOND (429 with Retry-After past it)",
    )
    api_open_data_per_second: float = Field(
        default=1.0,
        gt=0,
        description="Open data requests per second one client address may make after its burst",
    )
    api_export_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Rows a streamed CSV export (the drill-down's) holds at most; past it the "
        "file ends with a line saying it was cut",
    )
    api_completeness_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long the API keeps a live figure's completeness (the reconciler's "
        "judgments change once a step, 60 s by default); an as-of one is kept for good; 0: "
        "asked of the store for every answer",
    )
    completeness_threshold: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="A figure whose population holds less than this share of the dossiers the "
        "source systems reported in their daily manifests is marked incomplete: `incomplete` in "
        "its provenance's completeness, a note on the public page (issue 18)",
    )
    nats_port: int = 4222

    def api_completeness_cache(self) -> CompletenessCache | None:
        seconds = self.api_completeness_cache_seconds
        return CompletenessCache(live_seconds=seconds) if seconds > 0 else None

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
    # An admin API key to make sure of at start (hashed, like every key): operators' first login
    # and tests. `motcua up` with no key at all generates one instead and prints it once.
    bootstrap_admin_key: SecretStr | None = None
    # The viewer key Grafana's API datasource reads the boards' figures with (compose passes the
    # same value to Grafana): `motcua migrate` makes sure of it like the admin key.
    grafana_api_key: SecretStr | None = None

    def api_limits(self) -> QueryLimits:
        return QueryLimits(self.api_query_seconds, self.api_query_memory_mb * 1024 * 1024)

    def api_admission(self) -> Admission:
        return Admission(
            per_key=self.api_requests_per_key,
            in_flight=max(self.api_requests_in_flight, self.api_requests_per_key),
            open_data=AddressRate(
                per_second=self.api_open_data_per_second, burst=self.api_open_data_burst
            ),
        )


class _EmbeddedServer(uvicorn.Server):
    # The runtime owns SIGINT/SIGTERM and stops every component in order; uvicorn must not
    # install its own handlers and re-raise the signal afterwards.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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


def _nats_ready(nc: NatsClient) -> Callable[[], Any]:
    async def ready() -> bool:
        if not nc.is_connected:
            return False
        try:
            await nc.flush(timeout=1)
        except Exception:
            return False
        return True

    return ready


async def prepare_storage(settings: CommonSettings) -> Client:
    client = await asyncio.to_thread(
        lambda: connect(settings.resolved_clickhouse_url(), create_database=True)
    )
    applied = await asyncio.to_thread(migrate, client, cluster=settings.clickhouse_cluster)
    if applied:
        log.info("ClickHouse migrations applied: %s", applied)
    # SQL counts working days against calendar_days: keep it equal to the shipped year files.
    written = await asyncio.to_thread(sync_calendar, client, WorkingCalendar.load())
    if written:
        log.info("working-day calendar: %d days written", written)
    return client


async def connect_nats(url: str) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        log.warning("NATS: %s", exc)

    # Every server of the list (MOTCUA_NATS_URL may name a cluster's): a lost one is replaced
    # by any other that is up, for ever.
    return await nats.connect(
        servers(url),
        name="motcua",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        **connect_options(url),
    )


def jetstream_publisher(nc: NatsClient) -> Publish:
    """Alert transitions to JetStream; the message id lets the stream drop a repeated publish."""
    js = nc.jetstream()

    async def publish(subject: str, body: bytes, msg_id: str) -> None:
        await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}, timeout=5)

    return publish


def connect_metrics(settings: MetricsSettings) -> Client:
    """A client for the metrics service: its queries run below the ingest and the API in the
    engine's CPU priority (MetricsSettings.metrics_nice). On two cores the figures' cycles took
    the CPU the ingest's inserts needed: publish-to-queryable p99 at 5,000 events/s was
    1.6-2.4 s with them at the same priority, 0.7-0.8 s below it (bench/README.md)."""
    return connect(settings.resolved_clickhouse_url(), settings=settings.metrics_query_settings())


def _may_renice() -> bool:
    """Whether this process has CAP_SYS_NICE, without which the engine ignores nice values."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux
        return False
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 23 & 1)
    return False


def start_metrics(
    client: Client, settings: MetricsSettings, plans: PlanSource, publish: Publish | None
) -> MetricsService:
    # Its computations' and plan evaluations' queries are refused once it stops (checked): a stop
    # waits for the query in flight, not the whole cycle.
    client = checked(client)
    # beside the refolder below: targets are evaluated on what it has folded
    monitor = PlanMonitor(
        client,
        plans,
        publish=publish,
        full_every=settings.metrics_full_snapshot_every,
        folded_only=True,
    )
    # The refolder gets a client of its own: it runs beside the figure computations, in
    # another thread, and a client is not for two threads at once.
    refolder = Refolder(connect_metrics(settings))
    embedded_engine = settings.resolved_clickhouse_url().startswith("chdb:")
    if embedded_engine and settings.metrics_nice != 0 and not _may_renice():
        log.info(
            "the metrics service's queries run at the ingest's CPU priority: the embedded engine "
            "needs CAP_SYS_NICE to change it (MOTCUA_METRICS_NICE)"
        )
    return MetricsService(
        client,
        refolder=refolder,
        refold_interval=settings.metrics_refold_interval,
        refold_max_busy_share=settings.metrics_refold_max_busy_share,
        interval=settings.metrics_interval,
        max_busy_share=settings.metrics_max_busy_share,
        full_snapshot_every=settings.metrics_full_snapshot_every,
        monitor=monitor,
        plans_interval=settings.metrics_plans_interval,
        plan_source=plans,
        feeds=FeedMonitor(client, FeedRule.from_settings(settings), publish=publish),
        feeds_interval=settings.metrics_feeds_interval,
        reconciler=Reconciler(client),
        reconcile_interval=settings.metrics_reconcile_interval,
    )


def _broker_security(options: dict[str, Any]) -> BaseSecurity | None:
    """connect_options' credentials and CA as FastStream takes them: it refuses credentials in
    its server URLs beside a `security`, and passes these to nats-py for every server."""
    tls = options.get("tls")
    if "user" in options:
        return NatsUserPassword(options["user"], options["password"], ssl_context=tls)
    if "token" in options:
        return NatsToken(options["token"], ssl_context=tls)
    return BaseSecurity(ssl_context=tls) if tls else None


def _broker_logger() -> logging.Logger:
    # FastStream logs every batch and every consumer task at INFO; at thousands of events a
    # second that buries what an operator needs. Its warnings and errors still show.
    logger = logging.getLogger("motcua.broker")
    logger.setLevel(logging.WARNING)
    return logger


async def start_ingest(
    settings: IngestSettings, nats_url: str
) -> tuple[NatsBroker, IngestPipeline]:
    client = await asyncio.to_thread(connect, settings.resolved_clickhouse_url())
    # Per-batch "Received/Processed" lines would drown the log at thousands of events a second.
    # Replies and pulled messages arrive in the ingest user's own inbox (nats_auth.inbox_prefix).
    options = connect_options(nats_url)
    inbox = options.get("inbox_prefix", "_INBOX")
    broker = NatsBroker(
        servers(nats_url),
        inbox_prefix=inbox,
        security=_broker_security(options),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        log_level=logging.DEBUG,
        logger=_broker_logger(),
    )
    pipeline = IngestPipeline(
        EventWriter(client),
        dead_letter_publisher(broker),
        flush_rows=settings.ingest_flush_rows,
        flush_interval=settings.ingest_flush_interval,
        max_pending=settings.max_pending,
        ack_wait=settings.ingest_ack_wait,
        recent_capacity=settings.ingest_recent_events,
        dead_letter_bytes_per_day=settings.ingest_dead_letter_bytes_per_day,
    )
    subscribe(broker, pipeline, settings)
    # Reference data (agencies, procedures) on the same broker, with a client of its own.
    reference_client = await asyncio.to_thread(connect, settings.resolved_clickhouse_url())
    subscribe_reference(broker, ReferenceWriter(reference_client), settings, f"{inbox}.".encode())
    await broker.start()
    return broker, pipeline


def cluster_root(settings: CommonSettings) -> Path:
    """`motcua up --nats-cluster`'s node stores (node-1, …); its users stay in <data>/nats."""
    return settings.data_dir / "nats-cluster"


def _nats_stores(settings: Settings, nats_cluster: int) -> list[tuple[Path, int]]:
    """Each embedded nats-server's store and client port: none with MOTCUA_NATS_URL, one, or a
    cluster's on consecutive ports from MOTCUA_NATS_PORT."""
    if settings.nats_url:
        return []
    if not nats_cluster:
        return [(settings.data_dir / "nats", settings.nats_port)]
    root = cluster_root(settings)
    return [(root / f"node-{i + 1}", settings.nats_port + i) for i in range(nats_cluster)]


def check_before_start(settings: Settings, nats_cluster: int = 0) -> socket.socket:
    """motcua/preflight.py's checks, in the order that explains most: a directory that
    cannot be written, one in use (another `motcua up` on it would also hold both ports), then
    the ports. Returns the API's listening socket, held from now on."""
    data, embedded_nats = settings.data_dir, not settings.nats_url
    stores = _nats_stores(settings, nats_cluster)
    url = urlsplit(settings.resolved_clickhouse_url())
    chdb = Path(unquote(url.path)) if url.scheme == "chdb" else None
    users = data / "nats" if embedded_nats else None  # a cluster's nodes share its users
    nats_dirs = [*([users] if users else []), *(store for store, _ in stores if store != users)]
    for directory in (data, *nats_dirs, chdb):
        if directory is not None:
            preflight.check_writable(directory)
    if chdb is not None:
        preflight.check_store_free(chdb, data)
    for store in nats_dirs:
        preflight.check_nats_store_free(store, data)
    api_socket = preflight.bind_api(settings.api_host, settings.api_port)
    try:
        # every server left by a killed run: the users' directory is one server's store too
        # (a `motcua up` without the cluster), and with one server it is the only store
        for store in nats_dirs:
            stop_orphan(store)
        for store, port in stores:
            preflight.check_nats_port(port, store)
    except BaseException:
        api_socket.close()
        raise
    return api_socket


def _api_url(host: str, api_socket: socket.socket) -> str:
    port = api_socket.getsockname()[1]  # MOTCUA_API_PORT=0: the one the system chose
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _start_nats(
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


async def _start_nats_cluster(
    settings: Settings, unshown: Unshown, size: int
) -> tuple[LocalCluster, RoleUrls, str | None]:
    """`motcua up --nats-cluster N`: N local nats-servers as one JetStream cluster, each with the
    users the single embedded server gets (its config file, included), and each part of the
    system connected to all N, so a killed node is a failover to watch, not an outage."""
    auth = await asyncio.to_thread(prepare_nats_users, settings.data_dir / "nats")
    cluster = LocalCluster(
        cluster_root(settings),
        size,
        ports=[port for _, port in _nats_stores(settings, size)],
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


def admin_key_notice(key: str) -> str:
    return (
        f"Khóa API quản trị (admin), chỉ hiện một lần — hãy lưu lại:\n"
        f"  {key}\n"
        f"  (Authorization: Bearer <khóa>; thêm khóa: POST /v1/keys hoặc `motcua keys`)"
    )


@contextlib.asynccontextmanager
async def embedded(
    settings: Settings, *, simulate: dict[str, Any] | None = None, nats_cluster: int = 0
) -> AsyncIterator[Running]:
    """Run the whole system in this process until the context exits, then stop it cleanly.
    `nats_cluster`: that many local nats-servers as one JetStream cluster instead of one.

    Whatever can be checked is checked before any credential is created (preflight), and each
    credential is kept on disk until it is printed (`running.unshown`)."""
    api_socket = await asyncio.to_thread(check_before_start, settings, nats_cluster)
    server: EmbeddedNats | LocalCluster | None = None
    cluster: LocalCluster | None = None
    unshown = Unshown(settings.data_dir)
    clients: dict[str, NatsClient] = {}

    async def client(url: str) -> NatsClient:
        # One connection per user; with MOTCUA_NATS_URL every part shares one.
        if url not in clients:
            clients[url] = await connect_nats(url)
        return clients[url]

    try:
        # A bad plan file stops the start here, with its file and line, not at the first request;
        # later changes to the plan files are taken while running (core/plans/source.py).
        plans = PlanSource(settings.plans_dir)
        clickhouse = await prepare_storage(settings)
        writer = await asyncio.to_thread(connect, settings.resolved_clickhouse_url())
        keys = KeyStore(writer)
        bootstrap = settings.bootstrap_admin_key
        admin_key, generated = await asyncio.to_thread(
            admin_key_at_start, keys, bootstrap.get_secret_value() if bootstrap else None
        )
        if generated and admin_key:
            unshown.keep(admin_key_notice(admin_key))
        credentials_notice: str | None = None
        if settings.nats_url:
            nats_url, urls = settings.nats_url, RoleUrls.same(settings.nats_url)
        elif nats_cluster:
            cluster, urls, credentials_notice = await _start_nats_cluster(
                settings, unshown, nats_cluster
            )
            server, nats_url = cluster, cluster.url
        else:
            server, urls, credentials_notice = await _start_nats(settings, unshown)
            nats_url = server.url
        nc = await client(urls.admin)
        await ensure_streams(nc.jetstream(), stream_replicas(settings, nats_cluster))
        await seed_if_empty(clickhouse, nc.jetstream())
        broker, pipeline = await start_ingest(settings, urls.ingest)
        metrics_client = await asyncio.to_thread(connect_metrics, settings)
        metrics_nc = await client(urls.metrics)
        metrics = start_metrics(metrics_client, settings, plans, jetstream_publisher(metrics_nc))
        api_nc = await client(urls.api)
        # The API reads through a client the engine keeps read-only; only the key store, which
        # `POST /v1/keys` and the first start write to, has a writing client.
        api_client = pooled(
            lambda: connect(
                settings.resolved_clickhouse_url(), read_only=True, limits=settings.api_limits()
            ),
            settings.api_query_concurrency,
        )
        api = create_app(
            ApiContext(
                clickhouse=api_client,
                nats_ready=_nats_ready(api_nc),
                keys=keys,
                clock=lambda: datetime.now(UTC),
                ingest_stats=lambda: pipeline.stats,
                metrics_status=lambda: metrics.status,
                trigger_metrics=metrics.trigger,
                replay_dead_letters=functools.partial(replay_dead_letters, writer, nc.jetstream()),
                plans=plans,
                page_cache=PageCache(settings.api_page_cache_seconds),
                admission=settings.api_admission(),
                export_max_rows=settings.api_export_max_rows,
                completeness_threshold=settings.completeness_threshold,
                completeness_cache=settings.api_completeness_cache(),
            )
        )
        uv = _EmbeddedServer(
            uvicorn.Config(
                api,
                host=settings.api_host,
                port=settings.api_port,
                log_level="warning",
                lifespan="off",
            )
        )
        running = Running(
            nats_url=nats_url,
            api_url=_api_url(settings.api_host, api_socket),
            clickhouse=clickhouse,
            nats=api_nc,
            api_clickhouse=api_client,
            pipeline=pipeline,
            metrics=metrics,
            nats_credentials_notice=credentials_notice,
            api_headers={"Authorization": f"Bearer {admin_key}"} if admin_key else {},
            new_admin_key=admin_key if generated else None,
            unshown=unshown,
            nats_cluster=cluster,
        )
        running.tasks += [
            asyncio.create_task(pipeline.run(), name="ingest-flusher"),
            asyncio.create_task(metrics.run(), name="metrics"),
            asyncio.create_task(uv.serve(sockets=[api_socket]), name="api"),
        ]
        simulator_stop = asyncio.Event()
        if simulate is not None:
            simulator_nc = await client(urls.simulator)
            running.tasks.append(
                asyncio.create_task(
                    _simulate(simulator_nc, simulate, simulator_stop), name="simulator"
                )
            )
        while not uv.started:
            await asyncio.sleep(0.02)
            for task in running.tasks:
                if task.done():
                    task.result()  # surface a failed start now
        try:
            yield running
        finally:
            # Asked first, cancelled too: the flag is seen between two publishes even where a
            # cancellation could be lost (see publisher._acked).
            simulator_stop.set()
            for task in running.tasks:
                if task.get_name() == "simulator":
                    task.cancel()
            await pipeline.stop()
            metrics.stop()
            uv.should_exit = True
            await asyncio.gather(*running.tasks, return_exceptions=True)
            # Store and ack what was fetched while the connection is still up; anything fetched
            # after this flush stays unacked and is redelivered on the next start.
            await pipeline.flush()
            for closing in (broker.stop(), *(c.drain() for c in clients.values())):
                try:
                    await closing
                except Exception as exc:  # already gone: unacked messages are redelivered
                    log.warning("while stopping: %r", exc)
    finally:
        if server:
            server.stop()
        api_socket.close()


async def _simulate(nc: NatsClient, options: dict[str, Any], stop: asyncio.Event) -> None:
    from tools.simulator.publisher import run_simulator

    try:
        await run_simulator(nc.jetstream(), stop=stop, now=lambda: datetime.now(UTC), **options)
    except asyncio.CancelledError:
        stop.set()
        raise


async def run_until_signal(
    settings: Settings, simulate: dict[str, Any] | None, nats_cluster: int = 0
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with embedded(settings, simulate=simulate, nats_cluster=nats_cluster) as running:
            await _serve(settings, running, stop)
    except preflight.StartRefused:
        raise  # before any credential was created: its one line says it all
    except BaseException:
        kept = settings.data_dir / UNSHOWN_FILE
        if kept.exists():
            print(
                f"Thông tin đăng nhập chưa hiện được giữ trong {kept} (mode 0600) và sẽ hiện ở "
                "lần `motcua up` sau chạy được. The credentials not shown yet are kept there "
                "and shown by the next start that gets this far.",
                file=sys.stderr,
                flush=True,
            )
        raise
    print("Đã dừng.", flush=True)


def _nats_banner(running: Running) -> str:
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


async def _serve(settings: Settings, running: Running, stop: asyncio.Event) -> None:
    """The banner and the credentials not shown yet, then wait for a signal or a failure."""
    print(
        f"motcua-monitor đang chạy\n"
        f"  API:          {running.api_url}\n"
        f"  Tài liệu API: {running.api_url}/docs\n"
        f"{_nats_banner(running)}"
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
