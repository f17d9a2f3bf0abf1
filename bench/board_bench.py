"""What one refresh of each Grafana board costs the API on a bench store.

Every figure on a board is a request to the API (tools/grafana/api_panels.py): a refresh sends
all of a board's API targets at once, as Grafana does, at most `--concurrency` at a time. This
runs `motcua api` on a store (bench/query_bench.py builds them), expands each committed board's
targets for a range and the province (Grafana's variables, as tests/test_board_figures.py plays
them) and times whole refreshes: wall time from the first request to the last answer, median and
p95 of `--runs` after one warm-up, with the API's CPU per refresh.

    python -m bench.board_bench --store /work/bench-stores/10m --out bench/results/boards-10m.json
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.probes import process_cpu
from bench.query_bench import ROOT, _out_path, _quantile, api_on_store
from core.zone import VN
from tools.grafana import export
from tools.grafana.model import API_DATASOURCE_UID

BOARDS = ROOT / "deploy" / "grafana" / export.DASHBOARDS_DIR


def board_urls(base: str, start: datetime, end: datetime, agency: str) -> dict[str, list[str]]:
    """Per board, the URL of each of its API targets for this range and agency (subtree)."""
    values = {
        "api_url": base,
        "__from": str(int(start.timestamp() * 1000)),
        "__to": str(int(end.timestamp() * 1000)),
        "agency": agency,
        "scope": "true",
    }

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], text)

    out: dict[str, list[str]] = {}
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        urls = []
        for panel in board["panels"]:
            for t in panel.get("targets", []):
                if t["datasource"]["uid"] == API_DATASOURCE_UID:
                    params = [(p["key"], expand(p["value"])) for p in t["url_options"]["params"]]
                    urls.append(f"{expand(t['url'])}?{urllib.parse.urlencode(params)}")
        if urls:
            out[board["uid"]] = urls
    return out


def refresh(client: httpx.Client, urls: list[str], concurrency: int) -> float:
    """One board refresh: every target at once (at most `concurrency` in flight); seconds."""
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for response in pool.map(client.get, urls):
            response.raise_for_status()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--agency", default="KHANHHOA", help="the province's code in the store")
    parser.add_argument("--from", dest="first", default="2026-01-01")
    parser.add_argument("--to", dest="last", default="2026-11-30")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--out", default="bench/results/boards.json")
    args = parser.parse_args()
    store = Path(args.store).resolve()
    key = secrets.token_hex(32)
    start = datetime.fromisoformat(args.first).replace(tzinfo=VN)
    end = datetime.fromisoformat(f"{args.last}T23:59:59.999").replace(tzinfo=VN)
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="board-bench-") as tmp_dir,
        api_on_store(store, key, Path(tmp_dir)) as api,
    ):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(headers=headers, timeout=120) as client:
            urls = board_urls(api.url, start, end, args.agency)
            for uid, board in urls.items():
                refresh(client, board, args.concurrency)  # warm-up
                cpu_before = process_cpu(api.pid)
                times = sorted(refresh(client, board, args.concurrency) for _ in range(args.runs))
                cpu = (process_cpu(api.pid) - cpu_before) / args.runs
                results[uid] = {
                    "requests": len(board),
                    "p50_ms": statistics.median(times) * 1000,
                    "p95_ms": _quantile(times, 0.95) * 1000,
                    "api_cpu_ms": cpu * 1000,
                }
                print(
                    f"{uid:22} {len(board):3} requests  p50 {results[uid]['p50_ms']:7.0f} "
                    f"p95 {results[uid]['p95_ms']:7.0f} ms  API CPU {cpu * 1000:6.0f} ms",
                    flush=True,
                )
    out = _out_path(args.out)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    out.write_text(json.dumps({"settings": settings, "boards": results}, indent=2))


if __name__ == "__main__":
    main()
