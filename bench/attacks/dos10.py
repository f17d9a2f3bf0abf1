"""Repeat issue 14 finding 4 against `motcua api` on a bench store: 200 concurrent
on_time_rate-by-agency requests with one key (clients give up after 20 s), /healthz probed every
0.2 s; then how long until the API answers a small keyed request again, and the API's CPU
seconds spent after the clients had gone."""

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.query_bench import api_on_store


def cpu_seconds(pid: int) -> float:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


async def attack(url: str, key: str, pid: int) -> None:
    h = {"Authorization": f"Bearer {key}"}
    path = os.environ.get("BURST_PATH", "/v1/metrics/on_time_rate")
    params = dict(
        p.split("=")
        for p in os.environ.get(
            "BURST_PARAMS", "from=2026-01-01&to=2026-12-31&group_by=agency"
        ).split("&")
    )
    health, done = [], False
    async with httpx.AsyncClient(
        base_url=url, timeout=20, limits=httpx.Limits(max_connections=400)
    ) as http:

        async def one():
            t0 = time.perf_counter()
            try:
                r = await http.get(path, params=params, headers=h)
                return r.status_code, time.perf_counter() - t0
            except httpx.HTTPError as e:
                return type(e).__name__, time.perf_counter() - t0

        async def probe():
            while not done:
                t0 = time.perf_counter()
                try:
                    r = await http.get("/healthz", timeout=20)
                    s = r.status_code
                except httpx.HTTPError as e:
                    s = type(e).__name__
                health.append((time.perf_counter() - t0, s))
                await asyncio.sleep(0.2)

        p = asyncio.create_task(probe())
        t0 = time.perf_counter()
        res = await asyncio.gather(*(one() for _ in range(200)))
        burst = time.perf_counter() - t0
        done = True
        await p
    cpu_gone = cpu_seconds(pid)
    codes = {}
    for s, _ in res:
        codes[s] = codes.get(s, 0) + 1
    ok = sorted(t for s, t in res if s == 200)
    print(f"burst of 200 x {path} {params}")
    print(
        f"burst: {burst:.1f} s; statuses {codes}; 200s answered p50 {statistics.median(ok) * 1000 if ok else float('nan'):.0f} ms, max {ok[-1] * 1000 if ok else float('nan'):.0f} ms"
    )
    hs = sorted(x for x, _ in health)
    print(
        f"/healthz during the burst: {len(hs)} probes, statuses {set(s for _, s in health)}, median {statistics.median(hs) * 1000:.0f} ms, max {hs[-1] * 1000:.0f} ms"
    )
    # after the clients have gone: when does a small keyed request answer at once again?
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while True:
            a = time.perf_counter()
            try:
                r = await http.get(
                    "/v1/metrics/online_share",
                    params={"from": "2026-10-01", "to": "2026-10-31", "agency": "STNMT"},
                    headers=h,
                )
                if r.status_code == 200 and time.perf_counter() - a < 1.0:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    back = time.perf_counter() - t0
    time.sleep(3)
    c1 = cpu_seconds(pid)
    time.sleep(5)
    c2 = cpu_seconds(pid)
    print(
        f"after the clients gave up: a small keyed request answered within 1 s after {back:.1f} s; API CPU since then {c1 - cpu_gone:.1f} s; idle check {c2 - c1:.2f} CPU-s in 5 s"
    )


def main() -> None:
    key = secrets.token_hex(32)
    with (
        tempfile.TemporaryDirectory() as tmp_dir,
        api_on_store(Path(sys.argv[1]), key, Path(tmp_dir)) as api,
    ):
        asyncio.run(attack(api.url, key, api.pid))


main()
