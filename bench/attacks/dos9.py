"""Repeat issue 14's page attack against `motcua api` on a bench store: 40 concurrent clients for
15 s asking made-up years and agency codes, /healthz polled meanwhile."""

import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.query_bench import api_on_store


async def attack(url: str, seconds: float = 15.0) -> None:
    stop = time.perf_counter() + seconds
    codes, times, health = {}, [], []
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def client(i: int) -> None:
            n = 0
            while time.perf_counter() < stop:
                n += 1
                path, params = random.choice(
                    [
                        ("/", {"nam": f"0{2026}"}),
                        ("/", {"nam": "0" * (n % 5 + 1) + "2026"}),
                        ("/", {"nam": "２０２６"}),
                        (f"/co-quan/ZZ{i}x{n}", {}),
                    ]
                )
                t0 = time.perf_counter()
                r = await http.get(path, params=params)
                times.append(time.perf_counter() - t0)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        async def probe() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await http.get("/healthz")
                health.append((time.perf_counter() - t0, r.status_code))
                await asyncio.sleep(0.2)

        await asyncio.gather(*(client(i) for i in range(40)), probe())
    times.sort()
    print(
        f"requests {len(times)} statuses {codes} p50 {statistics.median(times) * 1000:.0f} ms p99 {times[int(len(times) * 0.99)] * 1000:.0f} ms max {times[-1] * 1000:.0f} ms"
    )
    h = sorted(x for x, _ in health)
    print(
        f"/healthz during the attack: {len(h)} probes, statuses {set(s for _, s in health)}, median {statistics.median(h) * 1000:.0f} ms, max {h[-1] * 1000:.0f} ms"
    )


def main() -> None:
    key = secrets.token_hex(32)
    with (
        tempfile.TemporaryDirectory() as tmp_dir,
        api_on_store(Path(sys.argv[1]), key, Path(tmp_dir)) as api,
    ):
        asyncio.run(attack(api.url))


main()
