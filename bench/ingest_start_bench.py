"""The ingest's memory and start-up with millions of stored events, and its per-flush lookup of
first deliveries: the stored-ids filter it held until issue 17 (kept here, for this comparison
only) against the store's `event_ids` table (migration 0029) that replaced it.

    python -m bench.ingest_start_bench --store /work/scratch/s12/ingest-c/store   # 10M, ~6 min
    python -m bench.ingest_start_bench --events 1000000 --repeats 3 --store /tmp/s  # a look

`build` (once, in a child process: chDB opens one data directory per process) migrates a store
and fills `events` with `--events` rows (random v4 ids, occurred_at spread over a year,
ingested_at one millisecond apart, a tiny payload; entity 'bench', which no view folds), and
`event_ids` from them as migration 0029 does for a store that already holds events.

Then, `--repeats` times, one child process per code path, old and new alternating, each a fresh
process on the same store (what an ingest start is):

- **start**: `IngestPipeline._load_memory()` (the dead-letter quota); the old path also loads
  the recent memory (the default 500,000 newest events' digests) and every stored event's key,
  and builds the filter, as `_load_memory` did before issue 17;
- **RSS**: the process's resident memory after the start, and its peak (VmHWM), both including
  the embedded engine's caches, and the growth over the process just before the start; then
  at steady state, once the recent memory is full (the new path fills it as it stores: here
  with 500,000 made-up entries), which is where a long-running process stays;
- **flush lookup**: one flush of `--batch` first deliveries the recent memory does not know
  (ids never stored, plus 1% copies of stored events, then the same flush without copies): old,
  the filter then a store lookup of its hits (`stored_payloads`); new, `stored_digests`. After
  one warm-up, 5 flushes of fresh ids per process; the process's figure is their median.

Medians over the repeats; ratios are new / old. Writes bench/results/ingest_start.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from clickhouse_connect.driver.client import Client

from core.ingestion.writer import EventWriter
from core.storage.clickhouse import connect
from core.storage.migrate import migrate
from services.ingest.pipeline import IngestPipeline

Keys = npt.NDArray[np.uint64]
RECENT = 500_000
FLUSHES = 5  # timed flush lookups per process (their median is the process's figure)
# The old filter's key: the UUID's upper 64 bits, as ClickHouse computed it for the load.
KEY_SQL = "toUInt64(bitShiftRight(toUInt128(event_id), 64))"


def stored_sample(client: Client, n: int) -> list[uuid.UUID]:
    """`n` stored event ids at random: the copies a flush of republished events carries."""
    rows = client.query(
        "SELECT toString(event_id) FROM events ORDER BY rand() LIMIT {n:UInt32}",
        parameters={"n": n},
    ).result_rows
    return [uuid.UUID(r[0]) for r in rows]


class OldStoredIds:
    """services/ingest/stored_ids.py as it was before issue 17 (its lookup and load paths)."""

    def __init__(self, keys: Keys) -> None:
        keys = np.sort(keys)
        if len(keys) > 1:
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        self._sorted = keys

    def may_contain(self, event_ids: Sequence[uuid.UUID]) -> list[bool]:
        keys = np.fromiter((e.int >> 64 for e in event_ids), np.uint64, len(event_ids))
        found = np.zeros(len(keys), dtype=bool)
        at = np.searchsorted(self._sorted, keys)
        inside = at < len(self._sorted)
        found[inside] = self._sorted[at[inside]] == keys[inside]
        return [bool(f) for f in found]


def _old_recent_digests(client: Any, limit: int) -> list[tuple[str, bytes]]:
    """EventWriter.recent_digests as it was: the recent memory's load at every start."""
    rows = client.query(
        "SELECT toString(event_id), MD5(payload) FROM events "
        "WHERE ingested_at >= (SELECT ingested_at FROM events "
        "    ORDER BY ingested_at DESC LIMIT 1 OFFSET {last:UInt64}) "
        "ORDER BY ingested_at DESC LIMIT {n:UInt64}",
        parameters={"n": limit, "last": max(limit - 1, 0)},
    ).result_rows
    return [(event_id, bytes(digest)) for event_id, digest in reversed(rows)]


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in bytes."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def build(store: Path, events: int) -> dict[str, Any]:
    client = connect(f"chdb://{store}")
    migrate(client)
    started = time.perf_counter()
    client.command(
        "INSERT INTO events (event_id, type, schema_version, occurred_at, agency_code, source, "
        "entity, entity_id, payload, subject, stream_seq, published_at, ingested_at) "
        "SELECT generateUUIDv4(number), 'bench', 1, "
        f"toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + toIntervalSecond(intDiv(number * "
        f"31536000, {events})), 'BENCH', 'bench', 'bench', toString(number), '{{}}', "
        "'motcua.events.BENCH.bench', number, now64(3), "
        f"now64(3) - toIntervalMillisecond({events} - number) FROM numbers({events})"
    )
    client.command("INSERT INTO event_ids SELECT toUInt128(event_id), MD5(payload) FROM events")
    client.command("OPTIMIZE TABLE event_ids FINAL")
    return {"events": events, "build_s": round(time.perf_counter() - started, 1)}


async def _nothing(_: Any) -> None:
    return None


def child(store: Path, mode: str, batch: int, seed: int) -> dict[str, Any]:
    client = connect(f"chdb://{store}")
    writer = EventWriter(client)
    client.query("SELECT count() FROM events")  # the engine up, as any start has it
    rss_before, _ = _rss()
    pipeline = IngestPipeline(writer, _nothing, recent_capacity=RECENT)
    started = time.perf_counter()
    asyncio.run(pipeline._load_memory())
    old: OldStoredIds | None = None
    if mode == "old":
        pipeline._recent.add(_old_recent_digests(client, RECENT))
        found = client.query_np(f"SELECT {KEY_SQL} FROM events")
        old = OldStoredIds(found.ravel().astype(np.uint64, copy=False))
    start_s = time.perf_counter() - started
    rss, hwm = _rss()
    if mode == "new":
        pipeline._recent.add((str(uuid.uuid4()), uuid.uuid4().bytes) for _ in range(RECENT))
    steady, _ = _rss()

    copies = stored_sample(client, max(1, batch // 100))
    rng = random.Random(seed)

    def flush_ids() -> list[uuid.UUID]:
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(batch)]
        ids[: len(copies)] = copies
        return ids

    def lookup(asked: list[uuid.UUID]) -> set[str]:
        if old is None:
            return set(writer.stored_digests(asked))
        hits = [str(i) for i, hit in zip(asked, old.may_contain(asked), strict=True) if hit]
        return set(writer.stored_payloads(hits))

    lookup(flush_ids())  # warm: the first query after a start also loads the table's index
    timings: dict[str, list[float]] = {"flush_copies_s": [], "flush_no_copy_s": []}
    for _ in range(FLUSHES):
        ids = flush_ids()
        for name, asked, expected in (
            ("flush_copies_s", ids, len(copies)),
            ("flush_no_copy_s", ids[len(copies) :], 0),
        ):
            started = time.perf_counter()
            found_ids = lookup(asked)
            timings[name].append(time.perf_counter() - started)
            assert len(found_ids) == expected, (name, len(found_ids), expected)
    return {
        "mode": mode,
        "start_s": start_s,
        "rss_mb": rss / 2**20,
        "hwm_mb": hwm / 2**20,
        "growth_mb": (rss - rss_before) / 2**20,
        "steady_mb": steady / 2**20,
        **{name: statistics.median(times) for name, times in timings.items()},
    }


def run(store: Path, events: int, batch: int, repeats: int) -> dict[str, Any]:
    if not store.exists():
        built = subprocess.run(
            [sys.executable, "-m", "bench.ingest_start_bench", "build", "--store", str(store)]
            + ["--events", str(events)],
            check=True,
            capture_output=True,
            text=True,
        )
        info = json.loads(built.stdout.splitlines()[-1])
    else:
        info = {"events": events, "build_s": None}
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    for r in range(repeats):
        for mode in ("old", "new") if r % 2 == 0 else ("new", "old"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.ingest_start_bench", "child", "--store", str(store)]
                + ["--mode", mode, "--batch", str(batch), "--seed", str(r)],
                check=True,
                capture_output=True,
                text=True,
            )
            runs[mode].append(json.loads(out.stdout.splitlines()[-1]))
    keys = (
        "start_s",
        "rss_mb",
        "hwm_mb",
        "growth_mb",
        "steady_mb",
        "flush_copies_s",
        "flush_no_copy_s",
    )
    medians = {
        mode: {k: statistics.median(x[k] for x in runs[mode]) for k in keys} for mode in runs
    }
    return {**info, "batch": batch, "repeats": repeats, "medians": medians, "runs": runs}


def report(result: dict[str, Any]) -> None:
    old, new = result["medians"]["old"], result["medians"]["new"]
    print(
        f"{result['events']:,} stored events, medians of {result['repeats']} "
        f"(one fresh process each), flush of {result['batch']:,} first deliveries"
    )
    print("| | before (filter) | after (event_ids) | after / before |")
    print("|---|---:|---:|---:|")
    rows = (
        ("ingest start (memory load)", "start_s", 1000, "ms"),
        ("RSS after start", "rss_mb", 1, "MB"),
        ("peak RSS (VmHWM)", "hwm_mb", 1, "MB"),
        ("RSS growth over the start", "growth_mb", 1, "MB"),
        ("RSS at steady state (recent memory full)", "steady_mb", 1, "MB"),
        ("flush lookup, 1% copies", "flush_copies_s", 1000, "ms"),
        ("flush lookup, no copy", "flush_no_copy_s", 1000, "ms"),
    )
    for label, key, scale, unit in rows:
        print(
            f"| {label} | {old[key] * scale:,.1f} {unit} | {new[key] * scale:,.1f} {unit} "
            f"| {new[key] / old[key]:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="run", choices=("run", "build", "child"))
    parser.add_argument("--store", type=Path, required=True, help="chDB directory (built if new)")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="ids per flush")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mode", choices=("old", "new"), default="new")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest_start.json"))
    args = parser.parse_args()
    if args.what == "build":
        print(json.dumps(build(args.store, args.events)))
    elif args.what == "child":
        print(json.dumps(child(args.store, args.mode, args.batch, args.seed)))
    else:
        result = run(args.store, args.events, args.batch, args.repeats)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        report(result)


if __name__ == "__main__":
    main()
