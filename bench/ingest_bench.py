"""Ingest throughput and latency against the bars: end to end ≥ 0.9 × a bare nats-py
fetch-and-ack loop, and publish-to-queryable p99 < 1 s at 5,000 events/s.

    python -m bench.ingest_bench [--events N] [--repeats R] [--out bench/results/ingest.json]

chDB opens one data directory per process, so every measurement runs in a child process of its
own (`--phase …`, which prints one JSON line) with a fresh nats-server and chDB store in a temp
dir. The publisher is a child process too, as an integrator would be. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig

from bench.probes import Watcher, machine_busy, main_thread_share, process_cpu, thread_cpu
from bench.workload import make_events, publish_all, publisher_main
from core.messaging.nats_server import EmbeddedNats, free_port
from core.messaging.streams import ensure_streams
from schemas.subjects import EVENTS_STREAM, EVENTS_SUBJECTS

ROOT = Path(__file__).resolve().parent.parent
INSERT_BATCH = 10_000

# --- Baseline A: bare nats-py ------------------------------------------------------------------


async def phase_nats_fetch(n: int, fetch_batch: int) -> dict[str, Any]:
    """Publish n events to a fresh stream, then fetch them in batches and ack each one."""
    events = make_events(n)
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as tmp:
        server = EmbeddedNats(Path(tmp) / "nats", port=free_port())
        await server.start()
        try:
            nc = await nats.connect(server.url)
            js = nc.jetstream(publish_async_max_pending=20_000)
            await ensure_streams(js)
            published = await publish_all(js, events, None)
            sub = await js.pull_subscribe(
                EVENTS_SUBJECTS,
                durable="bench",
                stream=EVENTS_STREAM,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT, ack_wait=60, max_ack_pending=-1
                ),
            )
            busy, own = machine_busy(), process_cpu(os.getpid()) + process_cpu(_pid(server))
            started = time.perf_counter()
            done = 0
            while done < n:
                for msg in await sub.fetch(fetch_batch, timeout=5):
                    await msg.ack()
                    done += 1
            await nc.flush()
            seconds = time.perf_counter() - started
            own = process_cpu(os.getpid()) + process_cpu(_pid(server)) - own
            busy = machine_busy() - busy
            await _all_acked(js, "bench")
            await nc.close()
        finally:
            server.stop()
    return {
        "fetch_ack_per_s": n / seconds,
        "publish_per_s": n / (published["acked"] - published["first"]),
        "cpu_other_s": max(0.0, busy - own),
    }


async def _all_acked(js: Any, durable: str) -> None:
    """The server applies acks asynchronously: wait (untimed) until it counts them all."""
    for _ in range(100):
        info = await js.consumer_info(EVENTS_STREAM, durable)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not everything was acked: {info}")


# --- Baseline B: the processor and the writer straight into chDB -------------------------------


def phase_chdb_insert(n: int) -> dict[str, Any]:
    """Process n events into rows, then insert them with the real writer in 10,000-row batches."""
    from core.ingestion.common import MessageMeta
    from core.ingestion.processor import EventRow, process
    from core.ingestion.writer import EventWriter
    from core.storage.clickhouse import connect
    from core.storage.migrate import migrate

    events = make_events(n)
    published = datetime.now(UTC)
    started = time.perf_counter()
    rows = []
    for seq, (subject, body, _) in enumerate(events, 1):
        row = process(body, MessageMeta(subject=subject, stream_seq=seq, published_at=published))
        assert isinstance(row, EventRow), row
        rows.append(row)
    process_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-chdb-") as tmp:
        client = connect(f"chdb://{tmp}/clickhouse")
        migrate(client)
        writer = EventWriter(client)
        busy, cpu = machine_busy(), time.process_time()
        started = time.perf_counter()
        for i in range(0, n, INSERT_BATCH):
            batch = rows[i : i + INSERT_BATCH]
            result = writer.write(batch, [])
            assert result.stored == len(batch) and not result.rejected
        insert_seconds = time.perf_counter() - started
        cpu, busy = time.process_time() - cpu, machine_busy() - busy
        assert client.command("SELECT count() FROM events") == n
        client.close()
    return {
        "insert_rows_per_s": n / insert_seconds,
        "insert_cpu_us_per_row": cpu / n * 1e6,
        "process_per_s": n / process_seconds,
        "cpu_other_s": max(0.0, busy - cpu),
    }


# --- The real system: end to end, backlog drain, latency ---------------------------------------


class Publisher:
    """The integrator: a child process that builds its events, then publishes them on `go`."""

    def __init__(self, child: asyncio.subprocess.Process, out: Path) -> None:
        self.child = child
        self.out = out

    @classmethod
    async def ready(cls, url: str, n: int, rate: float | None, tmp: str) -> Publisher:
        out = Path(tmp) / "publisher.json"
        args = ["--phase", "publish", "--url", url, "--events", str(n), "--pub-out", str(out)]
        if rate is not None:
            args += ["--rate", str(rate)]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.ingest_bench", *args,
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert child.stdin and child.stdout
        line = await child.stdout.readline()
        assert line.strip() == b"ready", line
        return cls(child, out)

    async def go(self) -> None:
        assert self.child.stdin
        self.child.stdin.write(b"go\n")
        await self.child.stdin.drain()

    async def report(self) -> dict[str, Any]:
        if await self.child.wait() != 0:
            raise RuntimeError("publisher failed")
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result


@asynccontextmanager
async def running_system(tmp: str) -> AsyncIterator[tuple[Any, Any, EmbeddedNats]]:
    """`motcua up` in this process on a fresh store; the nats-server is started here rather than
    by embedded() so that its CPU time can be read, and a backlog published before ingest starts."""
    from motcua.embedded import embedded
    from motcua.settings import Settings

    server = EmbeddedNats(Path(tmp) / "nats", port=free_port())
    await server.start()
    settings = Settings(data_dir=Path(tmp) / "data", nats_url=server.url, api_port=free_port())
    try:
        yield server, settings, embedded
    finally:
        server.stop()


async def phase_system(
    mode: str,
    n: int,
    rate: float | None,
    poll: float,
    gc_threshold: int = 0,
    settle: bool = True,
) -> dict[str, Any]:
    """Until every event is queryable — e2e: publish as fast as possible while the system runs;
    drain: publish first, then start the system (timed from the moment ingest creates its
    consumer, as Baseline A is timed from its first fetch); latency: publish paced at `rate`."""
    # The embedded engine is never closed in this process: a background merge may still be
    # writing when the directory goes, which must not fail a run whose figures are taken.
    with tempfile.TemporaryDirectory(prefix=f"bench-{mode}-", ignore_cleanup_errors=True) as tmp:
        async with running_system(tmp) as (server, settings, embedded):
            nc = await nats.connect(server.url)
            await ensure_streams(nc.jetstream())
            publisher = await Publisher.ready(server.url, n, rate, tmp)
            if mode == "drain":
                await publisher.go()
                published = await publisher.report()
                created = asyncio.create_task(_consumer_created(nc, settings.ingest_durable))
            async with embedded(settings) as running:
                if gc_threshold:  # an experiment: see --system-gc-threshold
                    gc.set_threshold(gc_threshold, 20, 10)
                if mode != "drain" and settle:
                    await _started(running)
                watcher = Watcher(settings.resolved_clickhouse_url(), n, poll)
                watcher.start()
                cpu = _cpu_reading(server)
                if mode == "drain":
                    started = await created
                else:
                    await publisher.go()
                await asyncio.to_thread(watcher.done.wait, 600)
                cpu = _cpu_used(cpu, _cpu_reading(server))
                if watcher.error:
                    raise watcher.error
                if mode != "drain":
                    published = await publisher.report()
                    started = published["first"]
                await asyncio.to_thread(watcher.check_fold)
                result = _latency(published, watcher) if mode == "latency" else {}
                watcher.client.close()
            await nc.close()
    result.update(
        events_per_s=n / (watcher.polls[-1][0] - started),
        publish_per_s=n / (published["acked"] - published["first"]),
        cpu_publisher_s=published["cpu"] if mode != "drain" else 0.0,
        **cpu,
    )
    result["cpu_other_s"] = max(0.0, result["cpu_other_s"] - result["cpu_publisher_s"])
    return result


async def _started(running: Any, limit: float = 120.0) -> None:
    """Until the system has finished starting: the seed's reference data stored, the first
    figures computed and the plans evaluated once. A steady state is what the latency bar is
    about; a start's one-off work (seeding, a first evaluation of every plan) inside a 10 s run
    would be measured as ingest latency."""
    status = running.metrics.status
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seeded = await asyncio.to_thread(
            lambda: running.clickhouse.command("SELECT count() FROM agencies")
        )
        if status.runs >= 1 and status.plans_runs >= 1 and seeded:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the system did not finish starting")


async def _consumer_created(nc: Any, durable: str) -> float:
    """When the ingest's durable consumer appears (it pulls right after creating it)."""
    js = nc.jetstream()
    while True:
        try:
            await js.consumer_info(EVENTS_STREAM, durable)
            return time.time()
        except nats.js.errors.NotFoundError:
            await asyncio.sleep(0.005)


def _pid(server: EmbeddedNats) -> int:
    assert server.process is not None
    return server.process.pid


def _cpu_reading(server: EmbeddedNats) -> dict[str, Any]:
    return {
        "at": time.time(),
        "machine": machine_busy(),
        "threads": thread_cpu(os.getpid()),
        "nats": process_cpu(_pid(server)),
    }


def _cpu_used(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    on_main, others = main_thread_share(before["threads"], after["threads"])
    nats_s = after["nats"] - before["nats"]
    return {
        "cpu_ingest_main_s": on_main,
        "main_thread_busy": on_main / (after["at"] - before["at"]),
        "cpu_ingest_threads_s": others,
        "cpu_nats_s": nats_s,
        # Everything else the machine did meanwhile (the publisher is subtracted by the caller):
        # other processes on a shared machine show up here.
        "cpu_other_s": after["machine"] - before["machine"] - on_main - others - nats_s,
    }


def _latency(published: dict[str, Any], watcher: Watcher) -> dict[str, Any]:
    sent_at: list[float] = published["sent_at"]
    visible_at = [0.0] * len(sent_at)
    i = 0
    for at, queryable in watcher.polls:
        while i < queryable:
            visible_at[i] = at
            i += 1
    true_ms = sorted((v - s) * 1000 for v, s in zip(visible_at, sent_at, strict=True))
    columns = watcher.client.query(
        "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', published_at, ingested_at)) "
        "FROM events"
    ).result_rows[0][0]
    return {
        "p50_ms": _quantile(true_ms, 0.5),
        "p99_ms": _quantile(true_ms, 0.99),
        "max_ms": true_ms[-1],
        "columns_p50_ms": columns[0],
        "columns_p99_ms": columns[1],
        "rate_achieved": len(sent_at) / (published["sent"] - published["first"]),
    }


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- The orchestrator --------------------------------------------------------------------------

PHASES = ("nats", "chdb", "e2e", "drain", "latency")


def _child(phase: str, args: argparse.Namespace, events: int, **extra: Any) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.ingest_bench", "--phase", phase, "--events", str(events)]
    cmd += ["--system-gc-threshold", str(args.system_gc_threshold)]
    if args.no_settle:
        cmd.append("--no-settle")
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    waited = _wait_for_quiet(args.quiet_wait)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"phase {phase} failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["waited_for_quiet_s"] = waited
    return result


def _wait_for_quiet(limit: float, busy_cores: float = 0.25) -> float:
    """Wait (up to `limit` s) until the machine is nearly idle: other work on a 2-core machine
    moves every figure. Whatever still runs during a phase is reported as cpu_other_s."""
    started = time.perf_counter()
    while True:
        before = machine_busy()
        time.sleep(0.5)
        if (machine_busy() - before) / 0.5 < busy_cores:
            break
        if time.perf_counter() - started > limit:
            print("  (machine still busy; measuring anyway)", file=sys.stderr, flush=True)
            break
    return time.perf_counter() - started


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    latency_events = int(args.latency_rate * args.latency_seconds)
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PHASES}
    started = time.perf_counter()
    for r in range(args.repeats):
        print(f"repeat {r + 1}/{args.repeats} …", file=sys.stderr, flush=True)
        runs["nats"].append(_child("nats", args, args.events, fetch_batch=args.fetch_batch))
        runs["chdb"].append(_child("chdb", args, args.events))
        runs["e2e"].append(_child("e2e", args, args.events))
        runs["drain"].append(_child("drain", args, args.events))
        runs["latency"].append(_child("latency", args, latency_events, rate=args.latency_rate))
    medians = {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in runs.items()}
    baseline = medians["nats"]["fetch_ack_per_s"]
    ratios = {
        "e2e_over_a": medians["e2e"]["events_per_s"] / baseline,
        "drain_over_a": medians["drain"]["events_per_s"] / baseline,
        # The same ratio taken within each repeat, then the median: less sensitive to drift.
        "e2e_over_a_paired": statistics.median(
            e["events_per_s"] / a["fetch_ack_per_s"]
            for e, a in zip(runs["e2e"], runs["nats"], strict=True)
        ),
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "events": args.events,
        "repeats": args.repeats,
        "system_gc_threshold": args.system_gc_threshold or None,
        "latency": {"rate": args.latency_rate, "events": latency_events},
        "medians": medians,
        "ratios": ratios,
        "bars": {
            "e2e_ratio_ge_0_9": ratios["e2e_over_a"] >= 0.9,
            "p99_lt_1s": medians["latency"]["p99_ms"] < 1000,
        },
        "bench_seconds": time.perf_counter() - started,
        "runs": runs,
    }


def table(report: dict[str, Any]) -> str:
    m, runs, ratios = report["medians"], report["runs"], report["ratios"]
    verdict = {True: "PASS", False: "FAIL"}

    def row(label: str, phase: str, key: str, unit: str, fmt: str = ",.0f") -> str:
        each = ", ".join(f"{r[key]:{fmt}}" for r in runs[phase])
        return f"  {label:<44} {m[phase][key]:>10{fmt}} {unit:<9} [{each}]"

    lat = report["latency"]
    return "\n".join(
        [
            f"ingest bench — {report['events']:,} events per throughput run, "
            f"{report['repeats']} repeats, {report['machine']['cpus']} CPUs; median [each run]",
            row("A  nats-py fetch(2000) + ack each", "nats", "fetch_ack_per_s", "events/s"),
            row("   nats-py publish_async, same process", "nats", "publish_per_s", "events/s"),
            row("B  processor.process: validate → row", "chdb", "process_per_s", "events/s"),
            row("B  EventWriter.write, 10,000-row inserts", "chdb", "insert_rows_per_s", "rows/s"),
            row(
                "   chDB insert CPU per row (all threads)",
                "chdb",
                "insert_cpu_us_per_row",
                "µs",
                ".1f",
            ),
            row("E2E publish → queryable (events + state)", "e2e", "events_per_s", "events/s"),
            f"  {'E2E / A':<44} {ratios['e2e_over_a']:>10.2f}           "
            f"(paired per repeat: {ratios['e2e_over_a_paired']:.2f})  "
            f"bar ≥ 0.90: {verdict[report['bars']['e2e_ratio_ge_0_9']]}",
            row("   publisher alongside (child process)", "e2e", "publish_per_s", "events/s"),
            row("   CPU: ingest event loop (main thread)", "e2e", "cpu_ingest_main_s", "s", ".2f"),
            row("        … share of the wall time", "e2e", "main_thread_busy", "", ".0%"),
            row("   CPU: ingest other threads (chDB…)", "e2e", "cpu_ingest_threads_s", "s", ".2f"),
            row("   CPU: nats-server", "e2e", "cpu_nats_s", "s", ".2f"),
            row("   CPU: publisher", "e2e", "cpu_publisher_s", "s", ".2f"),
            row("   CPU: anything else on the machine", "e2e", "cpu_other_s", "s", ".2f"),
            row("Drain a published backlog → queryable", "drain", "events_per_s", "events/s"),
            f"  {'Drain / A (like for like: both drain)':<44} {ratios['drain_over_a']:>10.2f}",
            f"Latency at {lat['rate']:,.0f} events/s paced, {lat['events']:,} events:",
            row("   publish → queryable p50 (polled)", "latency", "p50_ms", "ms"),
            row("   publish → queryable p99 (polled)", "latency", "p99_ms", "ms")
            + f"  bar < 1000 ms: {verdict[report['bars']['p99_lt_1s']]}",
            row("   publish → queryable max", "latency", "max_ms", "ms"),
            row("   ingested_at − published_at p50", "latency", "columns_p50_ms", "ms"),
            row("   ingested_at − published_at p99", "latency", "columns_p99_ms", "ms"),
            row("   publish rate achieved", "latency", "rate_achieved", "events/s"),
            _load_warning(report),
            f"bench took {report['bench_seconds']:.0f} s",
        ]
    )


def _load_warning(report: dict[str, Any]) -> str:
    """Flag phases during which other processes took a noticeable share of the machine."""
    busy = [
        f"{phase} {r['cpu_other_s']:.1f} s"
        for phase, runs in report["runs"].items()
        for r in runs
        if r["cpu_other_s"] > 0.5
    ]
    if not busy:
        return "other load during the runs: none worth noting"
    return "CPU taken by other processes during runs (figures depressed): " + ", ".join(busy)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ingest_bench", description=__doc__)
    p.add_argument("--events", type=int, default=100_000, help="events per throughput run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/ingest.json")
    p.add_argument("--fetch-batch", type=int, default=2_000, help="Baseline A fetch size")
    p.add_argument("--latency-rate", type=float, default=5_000.0)
    p.add_argument("--latency-seconds", type=float, default=10.0)
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each phase, wait up to this many seconds for other load to stop",
    )
    p.add_argument(
        "--system-gc-threshold",
        type=int,
        default=0,
        help="experiment: gc.set_threshold(N, 20, 10) in the system process (default: as shipped)",
    )
    p.add_argument(
        "--no-settle",
        action="store_true",
        help="E2E and latency: publish as soon as the system is up, not once it has finished "
        "starting (seed stored, first figures and plan evaluation done)",
    )
    p.add_argument("--phase", choices=[*PHASES, "publish"], help="internal: one measurement")
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    p.add_argument("--pub-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.phase:
        print(json.dumps(_phase(args)), flush=True)
        return
    report = run_all(args)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"wrote {out}")


def _phase(args: argparse.Namespace) -> dict[str, Any]:
    if args.phase == "publish":
        asyncio.run(publisher_main(args.url, args.events, args.rate, args.pub_out))
        return {}
    if args.phase == "nats":
        return asyncio.run(phase_nats_fetch(args.events, args.fetch_batch))
    if args.phase == "chdb":
        return phase_chdb_insert(args.events)
    poll = 0.01 if args.phase == "latency" else 0.02
    return asyncio.run(
        phase_system(
            args.phase,
            args.events,
            args.rate,
            poll,
            args.system_gc_threshold,
            settle=not args.no_settle,
        )
    )


if __name__ == "__main__":
    main()
