"""Issue 14 finding 5 repeated: `motcua up` on a fresh store; as a NATS user, 150 messages of
1 MB and 150 of 70 KB on one integrator's subject; then one auditor listing of 1,000 dead
letters: its size, the process's RSS, /healthz meanwhile."""

import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path

import httpx
import nats

from bench.attacks.up import motcua_up
from bench.query_bench import _free_port


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024


async def attack(nats_url, api, key, pid):
    nc = await nats.connect(nats_url, inbox_prefix="_INBOX_admin")
    js = nc.jetstream()
    out = {}
    for size, n in ((1_000_000, 150), (70_000, 150)):
        ok = refused = 0
        for i in range(n):
            try:
                await js.publish(
                    "motcua.events.STNMT.dossier.received", bytes([65 + i % 26]) * size, timeout=5
                )
                ok += 1
            except Exception as e:
                refused += 1
                err = type(e).__name__
        out[size] = (ok, refused)
        print(
            f"{n} x {size:,} bytes: accepted {ok}, refused {refused}"
            + (f" ({err})" if refused else ""),
            flush=True,
        )
    await nc.close()
    h = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api, timeout=120) as http:
        for _ in range(120):
            n = len(
                (
                    await http.get(
                        "/v1/dead-letters", params={"integrator": "STNMT", "limit": 1000}, headers=h
                    )
                ).json()
            )
            if n >= sum(o for o, _ in out.values()):
                break
            await asyncio.sleep(1)
        before = rss_mb(pid)
        health = []

        async def probe():
            while not done:
                t0 = time.perf_counter()
                await http.get("/healthz")
                health.append(time.perf_counter() - t0)
                await asyncio.sleep(0.1)

        done = False
        p = asyncio.create_task(probe())
        t0 = time.perf_counter()
        r = await http.get(
            "/v1/dead-letters", params={"integrator": "STNMT", "limit": 1000}, headers=h
        )
        took = time.perf_counter() - t0
        done = True
        await p
        print(
            f"listing: {len(r.json())} letters, {len(r.content) / 1e6:.2f} MB in {took:.2f} s; RSS {before:.0f} -> {rss_mb(pid):.0f} MB; /healthz max {max(health) * 1000:.0f} ms over {len(health)} probes"
        )


def main():
    port, nport = _free_port(), _free_port()
    key = secrets.token_hex(32)
    with (
        tempfile.TemporaryDirectory() as tmp,
        motcua_up(Path(tmp), port, nats_port=str(nport), bootstrap_admin_key=key) as p,
    ):
        with open(f"{tmp}/data/nats/credentials.json") as f:
            creds = json.load(f)["users"]["admin"]["password"]
        asyncio.run(
            attack(
                f"nats://admin:{creds}@127.0.0.1:{nport}", f"http://127.0.0.1:{port}", key, p.pid
            )
        )


main()
