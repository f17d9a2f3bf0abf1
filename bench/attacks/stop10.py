"""Issue 14 finding 7: `motcua up` on a bench store, SIGINT while a figure cycle runs; seconds
from SIGINT to exit. The metrics interval is short so a cycle is nearly always in flight."""

import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.attacks.up import motcua_up
from bench.query_bench import _free_port

store = sys.argv[1]
out = []
for trial in range(int(sys.argv[2]) if len(sys.argv) > 2 else 4):
    with (
        tempfile.TemporaryDirectory() as tmp,
        motcua_up(
            Path(tmp),
            _free_port(),
            clickhouse_url=f"chdb://{store}",
            metrics_interval="1",
            metrics_max_busy_share="1",
            metrics_full_snapshot_every="1",
            bootstrap_admin_key=secrets.token_hex(32),
        ) as p,
    ):
        time.sleep(15 + 3 * trial)  # into the cycles
        t0 = time.perf_counter()
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=300)
            took = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            p.kill()
            took = float("inf")
        out.append(took)
        print(f"trial {trial}: exit {p.returncode} {took:.1f} s after SIGINT", flush=True)
print(
    f"SIGINT to exit: median {statistics.median(out):.1f} s, max {max(out):.1f} s over {len(out)} trials"
)
