"""`motcua up` of this checkout as a child process, for the attacks that need the whole system."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.query_bench import ROOT, child_env


@contextmanager
def motcua_up(
    tmp: Path, api_port: int, ready_timeout: float = 600, **settings: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Started with its data under `tmp` and `settings` (MOTCUA_*), yielded once /healthz
    answers; stopped with SIGINT on exit if it still runs (an attack may stop it itself)."""
    env = child_env(ROOT, data_dir=str(tmp / "data"), api_port=str(api_port), **settings)
    with (tmp / "up.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "motcua.cli", "up"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"motcua up did not answer within {ready_timeout} s")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
