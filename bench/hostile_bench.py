"""How cheaply the decoder refuses hostile payloads, against a valid event measured in the same run.

    python -m bench.hostile_bench            # ~10 s; writes bench/results/hostile.json

Each line is `core.ingestion.processor.process` on one payload, timed with `timeit` in loops of
enough calls to last ~20 ms, repeated; the median per call is reported, and its ratio to the
median of the valid `dossier.received` example (the baseline, the cost every real event pays).
For reference, the last lines time what a full parse costs: stdlib `json.loads` on a legal-size
(60 KB) flat payload, and on the 30,000-level nesting (it raises RecursionError).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.ingestion.common import DeadLetter, MessageMeta
from core.ingestion.processor import process
from schemas import export
from schemas.subjects import MAX_EVENT_BYTES, event_subject

EXAMPLE = Path(export.__file__).parent / "v1" / "examples" / "dossier.received.json"


def payloads() -> dict[str, bytes]:
    valid = EXAMPLE.read_bytes()
    event = json.loads(valid)
    # Legal size, flat: the most a payload under the size limit can make the parser read.
    big_field = json.dumps(event | {"source": "x" * (MAX_EVENT_BYTES - len(valid) - 100)})
    return {
        "valid dossier.received (baseline)": valid,
        "invalid_json: b'{not json'": b"{not json",
        "invalid_field: 64 KB flat, full parse": big_field.encode(),
        "oversized: 64 KiB + 1 spaces": b" " * (MAX_EVENT_BYTES + 1),
        "oversized: 100,000 levels [[[…]]] (200 KB)": b"[" * 100_000 + b"]" * 100_000,
        "too_deep: 30,000 levels [[[…]]] (60 KB)": b"[" * 30_000 + b"]" * 30_000,
        'too_deep: 10,000 levels {"a":…} (60 KB)': b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "too_deep: 40,000 × '[' never closed": b"[" * 40_000,
    }


def median_seconds(call: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    timer = timeit.Timer(call)
    number, _ = timer.autorange()  # loops lasting ≥ 0.2 s
    number = max(1, number // 10)  # ~20 ms per sample, so `repeats` samples stay quick
    samples = [t / number for t in timer.repeat(repeat=repeats, number=number)]
    return statistics.median(samples), samples


def run(repeats: int) -> dict[str, Any]:
    meta = MessageMeta(
        event_subject("STNMT", "dossier.received"), 1, datetime(2026, 3, 2, tzinfo=UTC)
    )
    lines: list[dict[str, Any]] = []
    for name, raw in payloads().items():
        outcome = process(raw, meta)
        reason = outcome.reason if isinstance(outcome, DeadLetter) else "stored"
        median, samples = median_seconds(lambda raw=raw: process(raw, meta), repeats)
        lines.append(
            {
                "payload": name,
                "bytes": len(raw),
                "outcome": reason,
                "median_s": median,
                "samples_s": samples,
            }
        )
    flat = payloads()["invalid_field: 64 KB flat, full parse"]
    deep = b"[" * 30_000 + b"]" * 30_000

    def stdlib_deep() -> None:
        with contextlib.suppress(RecursionError):
            json.loads(deep)

    for name, call in (
        ("reference: json.loads, 64 KB flat", lambda: json.loads(flat)),
        ("reference: json.loads, 30,000 levels → RecursionError", stdlib_deep),
    ):
        median, samples = median_seconds(call, repeats)
        lines.append(
            {
                "payload": name,
                "bytes": len(flat if "flat" in name else deep),
                "outcome": "-",
                "median_s": median,
                "samples_s": samples,
            }
        )
    baseline = lines[0]["median_s"]
    for line in lines:
        line["ratio_to_valid"] = line["median_s"] / baseline
    return {"repeats": repeats, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("bench/results/hostile.json"))
    args = parser.parse_args()
    result = run(args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'payload':<58} {'bytes':>8} {'outcome':<14} {'median µs':>10} {'× valid':>8}")
    for line in result["lines"]:
        print(
            f"{line['payload']:<58} {line['bytes']:>8} {line['outcome']:<14} "
            f"{line['median_s'] * 1e6:>10.1f} {line['ratio_to_valid']:>8.2f}"
        )
    print(f"medians of {args.repeats} samples; written to {args.out}")


if __name__ == "__main__":
    main()
