"""What the completeness machinery costs on a real-sized store (issue 18).

    python -m bench.reconciliation_bench --store /work/bench-stores/1m-rec --days 30

On a store built by bench/query_bench.py (a copy: this bench writes manifests into it), it
publishes through the real processor and writer one `manifest.daily` per agency for each of the
last `--days` days before the store's last day, made from what the store holds (so most days
match), with ids for days of at most 1,000 dossiers, and `--lost` of the days reporting a few
dossiers more than stored (a lost batch). Then it times, medians over `--runs`:

- the reconciler's first step (every manifest day judged) and a steady step (one manifest
  changed), and their rows;
- `summary()` for a year of the whole province and for a month of one agency: the one query
  each figure answer adds for its completeness.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.figures import completeness
from core.figures.manifests import day_start
from core.figures.reads import Read
from core.figures.reconciler import MAX_KEYS_PER_STEP, Reconciler
from core.ingestion.common import DeadLetter, MessageMeta
from core.ingestion.processor import process
from core.ingestion.writer import EventWriter
from core.storage.clickhouse import connect
from core.zone import VN

_NS = uuid.UUID("5f0c54a4-8f0e-4f7e-9d55-3a0f6c1b7e21")


def _stored_days(client: Any, first: Any, last: Any) -> list[tuple[str, Any, int, list[str]]]:
    rows = client.query(
        """
        SELECT agency_code, toDate(received_at, 'Asia/Ho_Chi_Minh') AS day, count(),
            if(count() <= 1000, groupArray(dossier_id), [])
        FROM dossier_facts
        WHERE valid_to = toDateTime64('2299-12-31 00:00:00', 3, 'UTC') AND sign = 1
            AND received_at >= {lo:DateTime64(3, 'UTC')} AND received_at < {hi:DateTime64(3, 'UTC')}
        GROUP BY agency_code, day
        """,
        parameters={
            "lo": day_start(first),
            "hi": day_start(last + timedelta(days=1)),
        },
    ).result_rows
    return [(str(a), d, int(n), list(ids)) for a, d, n, ids in rows]


def _manifest(agency: str, day: Any, n: int, ids: list[str], lost: int, version: int) -> bytes:
    extra_ids = [f"LOST-{agency}-{day}-{i}" for i in range(lost)]
    listed = ids + extra_ids if ids else None
    return json.dumps(
        {
            "event_id": str(uuid.uuid5(_NS, f"{agency}|{day}|{version}")),
            "schema_version": 1,
            "type": "manifest.daily",
            "occurred_at": (
                datetime(day.year, day.month, day.day, tzinfo=VN)
                + timedelta(days=1, minutes=version)
            ).isoformat(),
            "agency_code": agency,
            "source": "bench",
            "day": day.isoformat(),
            "dossiers_received": n + lost,
            "dossiers_finished": 0,
            "dossiers_open": 0,
            "feedback_filed": 0,
            "feedback_answered": 0,
            "received_ids": listed,
        }
    ).encode()


def _publish(client: Any, payloads: list[tuple[str, bytes]]) -> None:
    writer = EventWriter(client)
    rows = []
    for seq, (agency, raw) in enumerate(payloads, start=1):
        meta = MessageMeta(f"motcua.events.{agency}.manifest.daily", seq, datetime.now(UTC))
        row = process(raw, meta)
        if isinstance(row, DeadLetter):
            raise SystemExit(f"manifest refused: {row.reason} {row.detail}")
        rows.append(row)
    for i in range(0, len(rows), 10_000):
        writer.write(rows[i : i + 10_000], [])


def _median_ms(run: Any, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--lost", type=float, default=0.05, help="share of days with a lost batch")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    client = connect(f"chdb://{args.store}")
    last_received = client.query(
        "SELECT max(received_at) FROM dossier_facts WHERE received_at IS NOT NULL"
    ).result_rows[0][0]
    last = last_received.replace(tzinfo=UTC).astimezone(VN).date() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    now = datetime(last.year, last.month, last.day, 12, tzinfo=VN) + timedelta(days=2)
    stored = _stored_days(client, first, last)
    every = max(1, round(1 / args.lost)) if args.lost > 0 else 0
    payloads = [
        (a, _manifest(a, d, n, ids, 3 if every and i % every == 0 else 0, 1))
        for i, (a, d, n, ids) in enumerate(stored)
    ]
    started = time.perf_counter()
    _publish(client, payloads)
    report: dict[str, Any] = {
        "store": args.store,
        "days": [first.isoformat(), last.isoformat()],
        "manifests": len(payloads),
        "with_ids": sum(1 for _, _, _, ids in stored if ids),
        "publish_s": round(time.perf_counter() - started, 2),
    }
    read = Read.of(client, None)
    reconciler = Reconciler(client)
    started = time.perf_counter()
    written = 0
    while True:  # the first step and its backlog
        n = reconciler.step(now, read)
        written += n
        if n < MAX_KEYS_PER_STEP:
            break
    report["first_step"] = {"rows": written, "s": round(time.perf_counter() - started, 2)}
    steady = []
    for version in range(2, 2 + min(args.runs, 10)):
        a, d, n, ids = stored[version]
        _publish(client, [(a, _manifest(a, d, n, ids, 0, version))])
        t0 = time.perf_counter()
        rows = reconciler.step(now, read)
        steady.append(((time.perf_counter() - t0) * 1000, rows))
    report["steady_step_ms"] = round(statistics.median(t for t, _ in steady), 1)
    report["steady_step_rows"] = statistics.median(r for _, r in steady)
    year_first = last.replace(month=1, day=1)
    one = stored[0][0]
    ms, year = _median_ms(lambda: completeness.summary(client, year_first, last, now), args.runs)
    report["summary_year_province_ms"] = round(ms, 1)
    report["summary_year_province"] = year.as_dict()
    ms, month = _median_ms(
        lambda: completeness.summary(client, first, last, now, agencies=(one,)), args.runs
    )
    report["summary_month_one_agency_ms"] = round(ms, 1)
    report["summary_month_one_agency"] = month.as_dict()
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
