"""What `motcua up` checks before it creates anything: its directories, its store, its ports.

A start that fails half-way has already generated credentials (the example integrator's
password, the first admin API key) that it never got to print; and a failure deep in the start
surfaced as a traceback. So everything that can be checked is checked first, and each refusal is
one line and an exit code of its own (README, "Exit codes").
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.messaging.nats_server import cmdline, stop_orphan, store_server
from motcua.embedded_nats import nats_stores
from motcua.settings import Settings

EXIT_API_PORT = 3
EXIT_NATS_PORT = 4
EXIT_DATA_DIR = 5
EXIT_DATA_DIR_IN_USE = 6


class StartRefused(Exception):
    """The start cannot go on: `message` is the one line to print, `exit_code` the status."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _describe(pid: int) -> str:
    args = cmdline(pid).split(b"\0")
    command = " ".join(a.decode(errors="replace") for a in args if a)
    return f"pid {pid} ({command[:160]})" if command else f"pid {pid}"


def port_holder(port: int) -> int | None:
    """The pid of the process listening on this TCP port, when this user may see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address "IP:PORT" in hex; state 0A is LISTEN
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:  # another user's process, or gone meanwhile
            continue
    return None


def _held_by(pid: int | None) -> str:
    return f"in use by {_describe(pid)}" if pid else "in use by another process"


def check_writable(path: Path) -> None:
    """Create `path` if missing and write a file in it: a read-only or foreign directory is
    found now, not by the engine or the key store half-way through the start."""
    probe = path / f".motcua-write-check.{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartRefused(
            EXIT_DATA_DIR,
            f"the data directory {path} cannot be written ({exc.strerror or exc}): set "
            "MOTCUA_DATA_DIR to a directory this user can write, or fix its owner or mode",
        ) from None


def check_store_free(chdb_dir: Path, data_dir: Path) -> None:
    """Refuse a chDB directory another process has open: the engine holds an flock on its
    `status` file, which names that process (chDB opens a store in one process only)."""
    status = chdb_dir / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return  # a new store
    try:
        text = os.read(fd, 4096).decode(errors="replace")
        if f"PID: {os.getpid()}\n" in text:
            return  # this process has it open already (tests drive `embedded` in-process)
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        pid = next((line[5:].strip() for line in text.splitlines() if line[:5] == "PID: "), "")
        holder = _describe(int(pid)) if pid.isdigit() else "another process"
        raise StartRefused(
            EXIT_DATA_DIR_IN_USE,
            f"the data directory {data_dir} is in use by {holder}: its store opens in one "
            "process only; stop that process, or set MOTCUA_DATA_DIR to another directory",
        ) from None
    finally:
        os.close(fd)  # also releases the shared lock taken just to test


def check_nats_store_free(nats_dir: Path, data_dir: Path) -> None:
    """Refuse a data directory whose nats-server a running motcua process started."""
    found = store_server(nats_dir)
    if found is not None and found[1] not in (None, os.getpid()):
        raise StartRefused(
            EXIT_DATA_DIR_IN_USE,
            f"the data directory {data_dir} is in use by {_describe(found[1])}, whose "
            f"nats-server (pid {found[0]}) runs on it: stop it first, or set MOTCUA_DATA_DIR "
            "to another directory",
        )


def check_nats_port(port: int, nats_dir: Path) -> None:
    """Refuse a NATS port another process listens on. The embedded server's readiness check
    would otherwise reach that process and take it for its own server (with other users:
    "Authorization Violation" forever). An orphan of this data directory was stopped already
    (EmbeddedNats.start); what is left belongs to something else, often a `motcua up` killed
    with SIGKILL on another data directory."""
    with socket.socket() as probe:
        # as nats-server binds (Go sets SO_REUSEADDR): a closed connection's TIME_WAIT is fine
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise StartRefused(
                    EXIT_NATS_PORT, f"cannot use NATS port {port} (MOTCUA_NATS_PORT): {exc}"
                ) from None
    pid = port_holder(port)
    orphan = ""
    if pid and "nats-server" in _describe(pid):
        orphan = (
            " (a nats-server left running by a `motcua up` that was killed, e.g. with kill -9:"
            f" stop it with `kill {pid}`)"
        )
    raise StartRefused(
        EXIT_NATS_PORT,
        f"NATS port {port} (MOTCUA_NATS_PORT) is {_held_by(pid)}{orphan}; stop that process "
        "or set MOTCUA_NATS_PORT to a free port",
    )


def bind_api(host: str, port: int) -> socket.socket:
    """The API's listening socket, taken before anything is created and handed to uvicorn,
    so the port cannot be taken in between either."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StartRefused(
            EXIT_API_PORT, f"cannot listen on {host} (MOTCUA_API_HOST): {exc.strerror}"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening at once: on Linux a bound socket that does not listen yet can be bound
        # again by another process using SO_REUSEADDR, as uvicorn does.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port} (MOTCUA_API_HOST:MOTCUA_API_PORT)"
        if exc.errno == errno.EADDRINUSE:
            message = f"the API's port {where} is {_held_by(port_holder(port))}; stop it or set "
            message += "MOTCUA_API_PORT to a free port"
        else:
            message = f"cannot listen on {where}: {exc.strerror or exc}"
        raise StartRefused(EXIT_API_PORT, message) from None
    return sock


def check_before_start(settings: Settings, nats_cluster: int = 0) -> socket.socket:
    """`motcua up`'s checks, in the order that explains most: a directory that cannot be
    written, one in use (another `motcua up` on it would also hold both ports), then
    the ports. Returns the API's listening socket, held from now on."""
    data, embedded_nats = settings.data_dir, not settings.nats_url
    stores = nats_stores(settings, nats_cluster)
    url = urlsplit(settings.resolved_clickhouse_url())
    chdb = Path(unquote(url.path)) if url.scheme == "chdb" else None
    users = data / "nats" if embedded_nats else None  # a cluster's nodes share its users
    nats_dirs = [*([users] if users else []), *(store for store, _ in stores if store != users)]
    for directory in (data, *nats_dirs, chdb):
        if directory is not None:
            check_writable(directory)
    if chdb is not None:
        check_store_free(chdb, data)
    for store in nats_dirs:
        check_nats_store_free(store, data)
    api_socket = bind_api(settings.api_host, settings.api_port)
    try:
        # every server left by a killed run: the users' directory is one server's store too
        # (a `motcua up` without the cluster), and with one server it is the only store
        for store in nats_dirs:
            stop_orphan(store)
        for store, port in stores:
            check_nats_port(port, store)
    except BaseException:
        api_socket.close()
        raise
    return api_socket
