"""`motcua up`'s first start, as a new user meets it (issue 15): what can fail is checked before
any credential is created, each refusal is one line and an exit code (README, "Exit codes"), and
a credential a start created but could not print is printed by the next start.

Every case is a real `motcua up` subprocess on a temporary data directory and free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest

from core.messaging import urls
from core.messaging.nats_server import free_port, store_server
from core.unshown import FILE as UNSHOWN
from tests.helpers import received
from tests.test_pipeline import d

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.nats, pytest.mark.clickhouse]  # `motcua up` runs both, embedded


def up_env(data: Path, nats_port: int, api_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    return env | {
        "MOTCUA_DATA_DIR": str(data),
        "MOTCUA_NATS_PORT": str(nats_port),
        "MOTCUA_API_PORT": str(api_port),
        "MOTCUA_METRICS_INTERVAL": "3600",
        "MOTCUA_METRICS_PLANS_INTERVAL": "3600",
        **extra,
    }


def refused(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `motcua up` expected to stop at its checks."""
    return subprocess.run(
        [sys.executable, "-m", "motcua.cli", "up"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("motcua up: "), done.stderr
    return lines[0]


def no_credentials(data: Path) -> None:
    """Nothing a start would have to print was created."""
    made = [p.name for p in data.rglob("*") if p.is_file()]
    assert not made, made


class Up:
    """A `motcua up` whose output goes to a file (a pipe nobody reads could block it)."""

    def __init__(self, env: dict[str, str], out: Path) -> None:
        self.out = out
        with out.open("wb") as stdout:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "motcua.cli", "up"],
                env=env,
                cwd=ROOT,
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, ready: object, what: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not (ready() if callable(ready) else ready):
            if self.proc.poll() is not None:
                raise AssertionError(f"motcua up ended before {what}:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} in time:\n{self.text()}")
            time.sleep(0.02)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=90)
        return self.text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def orphans() -> Iterator[list[int]]:
    """nats-servers a test leaves behind on purpose (a killed `motcua up`'s): stopped at the end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def test_a_busy_api_port_is_one_line_and_exit_3_before_any_credential(tmp_path: Path) -> None:
    # Catches (issue 15): the admin key and the integrator's password created, never printed,
    # and a `Task exception was never retrieved … SystemExit: 3` traceback, when the API's port
    # was taken.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = refused(up_env(tmp_path / "data", free_port(), port))
    assert done.returncode == 3, done.stderr
    line = one_line(done)
    assert f"127.0.0.1:{port}" in line and "MOTCUA_API_PORT" in line
    assert f"pid {os.getpid()}" in line  # what holds the port: this test
    no_credentials(tmp_path / "data")


def test_an_unwritable_data_directory_is_one_line_and_exit_5(tmp_path: Path) -> None:
    # Catches: a read-only or foreign data directory found by the engine or the key store half-way
    # through the start (a traceback, credentials half made), or a start that creates a file in
    # it anyway.
    data = tmp_path / "data"
    data.mkdir()
    as_root = os.geteuid() == 0
    # root writes through permission bits; an immutable directory stops it (as the fault suite)
    locked = subprocess.run(["chattr", "+i", str(data)], check=False) if as_root else None
    if not as_root:
        data.chmod(0o500)
    try:
        assert locked is None or locked.returncode == 0, "chattr +i is needed as root"
        done = refused(up_env(data, free_port(), free_port()))
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(data)], check=True)
        data.chmod(0o700)
    assert done.returncode == 5, done.stderr
    line = one_line(done)
    assert str(data) in line and "MOTCUA_DATA_DIR" in line
    no_credentials(data)

    # A data directory under a file cannot even be created.
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = refused(up_env(blocker / "data", free_port(), free_port()))
    assert done.returncode == 5 and "MOTCUA_DATA_DIR" in one_line(done), done.stderr


def test_an_invalid_plan_file_is_one_line_and_exit_7(tmp_path: Path) -> None:
    # Catches: a bad plan file in MOTCUA_PLANS_DIR surfacing as a traceback from the middle of
    # the start, after the credentials were created.
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "broken.yaml").write_text("id: x\nversion: [\n", encoding="utf-8")
    data = tmp_path / "data"
    done = refused(up_env(data, free_port(), free_port(), MOTCUA_PLANS_DIR=str(plans)))
    assert done.returncode == 7, done.stderr
    assert "broken.yaml" in one_line(done)
    no_credentials(data)


async def test_credentials_a_killed_start_never_printed_come_with_the_next_start(
    tmp_path: Path, orphans: list[int]
) -> None:
    # Catches (issue 15): a first start that stops before its banner losing the only admin key
    # and the example integrator's password for good ("later starts print nothing"); the
    # nats-server a SIGKILLed `motcua up` leaves on its port met by the next start as if it were
    # its own ("Authorization Violation" forever) instead of named in one line; a second
    # `motcua up` on a data directory in use.
    data, nats_port, api_port = tmp_path / "data", free_port(), free_port()
    env = up_env(data, nats_port, api_port)
    first = Up(env, tmp_path / "first.log")
    try:
        # Killed once both credentials exist and its nats-server runs, before the banner.
        first.wait_for(
            lambda: (
                "motcua integrators add" in _read(data / UNSHOWN)
                and store_server(data / "nats") is not None
            ),
            "the first start's credentials",
        )
        first.proc.kill()
        first.proc.wait()
    finally:
        first.kill()
    printed = first.text()
    assert "Ctrl-C" not in printed, "the start got to its banner before the kill: " + printed
    kept = _read(data / UNSHOWN)
    password = re.search(r"user integrator_stnmt  password (\S+)", kept)
    admin_key = re.search(r"^\s+(mk_\S+)$", kept, re.M)
    assert password and admin_key, kept
    assert password[1] not in printed and admin_key[1] not in printed
    orphan = store_server(data / "nats")
    assert orphan is not None and orphan[1] is None  # left running, its motcua gone
    orphans.append(orphan[0])

    # Another data directory on the same NATS port meets the orphan: named, and how to stop it.
    elsewhere = refused(up_env(tmp_path / "other", nats_port, free_port()))
    assert elsewhere.returncode == 4, elsewhere.stderr
    line = one_line(elsewhere)
    assert f"pid {orphan[0]}" in line and f"kill {orphan[0]}" in line and "MOTCUA_NATS_PORT" in line
    no_credentials(tmp_path / "other")

    # The same data directory again: its orphan is stopped, and the credentials come now.
    second = Up(env, tmp_path / "second.log")
    try:
        second.wait_for(lambda: "`motcua keys`)" in second.text(), "the credentials")
        shown = second.text()
        assert "chưa kịp hiện" in shown
        assert password[1] in shown and admin_key[1] in shown
        assert not (data / UNSHOWN).exists()  # printed: not kept in clear any longer

        # While it runs, the data directory is in use: refused in one line, exit 6.
        busy = refused(up_env(data, free_port(), free_port()))
        assert busy.returncode == 6, busy.stderr
        assert f"pid {second.proc.pid}" in one_line(busy)

        # Both credentials work.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
            auth = {"Authorization": f"Bearer {admin_key[1]}"}
            assert (await http.get("/v1/pipeline", headers=auth)).status_code == 200
        nc = await nats.connect(
            f"nats://127.0.0.1:{nats_port}",
            user="integrator_stnmt",
            password=password[1],
            inbox_prefix=urls.inbox_prefix("integrator_stnmt"),
            allow_reconnect=False,
            connect_timeout=5,
        )
        try:
            event = received("STNMT", f"FS-{uuid.uuid4().hex[:8]}", d(3), due=d(5, 17))
            ack = await nc.jetstream().publish(
                "motcua.events.STNMT.dossier.received", json.dumps(event).encode(), timeout=10
            )
            assert ack.seq
        finally:
            await nc.close()
        rest = second.stop()
    finally:
        second.kill()
    assert second.proc.returncode == 0, rest


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
