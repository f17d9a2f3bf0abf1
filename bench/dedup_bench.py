"""What recognising a copy of an old event costs per flush: the stored-ids filter against the
store lookup it spares, measured in the same run on the same store. The filter left the ingest
with issue 17 (bench/ingest_start_bench.py compares it with the `event_ids` lookup that
replaced it); its code lives on in that bench, for the comparisons only.

    python -m bench.dedup_bench                      # 10 million stored events, ~1.5 min
    python -m bench.dedup_bench --events 1000000     # a quick look

A migrated chDB store in a temp dir gets `--events` rows in `events` (random v4 ids, a tiny
payload; entity 'bench', which no materialized view folds). Then, for one flush of `--batch`
first deliveries (ids never stored, as almost every flush is, plus 1% copies of stored ones):

- **lookup (baseline)**: `EventWriter.stored_payloads`, the query the ingest would have to run on
  every flush without the filter (the `event_id` bloom-filter index; `event_id` is not in the
  sort key);
- **filter**: `StoredIds.may_contain` (now bench.ingest_start_bench.OldStoredIds) on the same
  ids, then the lookup of only its hits;
- **filter, no copy**: the same flush without the copies, the common case: no lookup at all;
- **load**: the scan of every stored id and building the filter, once per ingest start.

Medians over `--repeats`; the ratio is filter / lookup. Writes bench/results/dedup.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingest_start_bench import KEY_SQL, OldStoredIds, stored_sample
from core.ingestion.writer import EventWriter
from core.storage.clickhouse import connect
from core.storage.migrate import migrate


def fill(writer_client: Any, events: int) -> None:
    # Only the columns without a default; ingested_at and the rest take theirs.
    writer_client.command(
        "INSERT INTO events (event_id, type, schema_version, occurred_at, agency_code, source, "
        "entity, entity_id, payload, subject, stream_seq, published_at) "
        "SELECT generateUUIDv4(number), 'bench', 1, now64(3), 'BENCH', 'bench', 'bench', "
        f"toString(number), '{{}}', 'motcua.events.BENCH.bench', number, now64(3) "
        f"FROM numbers({events})"
    )


def run(events: int, batch: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{tmp}/store")
        migrate(client)
        writer = EventWriter(client)
        started = time.perf_counter()
        fill(client, events)
        fill_s = time.perf_counter() - started

        load: list[float] = []
        stored = OldStoredIds(np.empty(0, np.uint64))
        for _ in range(repeats):
            started = time.perf_counter()
            keys = client.query_np(f"SELECT {KEY_SQL} FROM events").ravel()
            stored = OldStoredIds(keys.astype(np.uint64, copy=False))
            load.append(time.perf_counter() - started)

        sample = stored_sample(client, max(1, batch // 100))
        rng = random.Random(1)
        lookup: list[float] = []
        filtered: list[float] = []
        alone: list[float] = []
        for _ in range(repeats):
            ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(batch)]
            ids[: len(sample)] = sample
            started = time.perf_counter()
            found = writer.stored_payloads([str(i) for i in ids])
            lookup.append(time.perf_counter() - started)
            started = time.perf_counter()
            hits = [str(i) for i, hit in zip(ids, stored.may_contain(ids), strict=True) if hit]
            found_too = writer.stored_payloads(hits)
            filtered.append(time.perf_counter() - started)
            assert found.keys() == found_too.keys() and len(found) == len(sample)
            fresh = ids[len(sample) :]
            started = time.perf_counter()
            assert not any(stored.may_contain(fresh))
            alone.append(time.perf_counter() - started)
        return {
            "events": events,
            "batch": batch,
            "repeats": repeats,
            "fill_s": round(fill_s, 1),
            "load_s": statistics.median(load),
            "lookup_s": statistics.median(lookup),
            "filter_s": statistics.median(filtered),
            "ratio": statistics.median(filtered) / statistics.median(lookup),
            "filter_alone_s": statistics.median(alone),
            "ratio_alone": statistics.median(alone) / statistics.median(lookup),
            "runs": {
                "load_s": load,
                "lookup_s": lookup,
                "filter_s": filtered,
                "filter_alone_s": alone,
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="ids per flush")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results/dedup.json"))
    args = parser.parse_args()
    result = run(args.events, args.batch, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    n, b = f"{result['events']:,}", f"{result['batch']:,}"
    print(f"{n} stored events, one flush of {b} first deliveries (1% copies of stored events)")
    print(f"  lookup every id in the store (baseline) {result['lookup_s'] * 1000:8.1f} ms")
    print(
        f"  stored-ids filter, then its hits        {result['filter_s'] * 1000:8.1f} ms"
        f"   × {result['ratio']:.3f}"
    )
    print(
        f"  stored-ids filter, no copy in the flush {result['filter_alone_s'] * 1000:8.1f} ms"
        f"   × {result['ratio_alone']:.3f}"
    )
    print(f"  filter load at ingest start             {result['load_s'] * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
