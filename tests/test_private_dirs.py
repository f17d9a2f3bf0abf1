"""The embedded stores are readable by their owner only (issue 14, finding 10): the chDB data
directory holds refused raw bytes, API key hashes and every event; the JetStream store every event
as published. Created 0755, any local user could read them."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.messaging.nats_server import EmbeddedNats


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_and_an_existing_chdb_store_are_owner_only(tmp_path: Path) -> None:
    # Catches: a store directory created with the umask's 0755, or an existing one (from before
    # this check) left open. Another process: chDB opens one data directory per process.
    new, old = tmp_path / "new" / "store", tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    code = (
        "import sys; from core.storage.clickhouse import connect\n"
        "for p in sys.argv[1:]: connect(f'chdb://{p}').close()"
    )
    subprocess.run([sys.executable, "-c", code, str(new), str(old)], check=True, timeout=120)
    assert _mode(new) == 0o700 and _mode(old) == 0o700


@pytest.mark.asyncio
async def test_the_jetstream_store_is_owner_only(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats" / "jetstream")
    await server.start()
    try:
        assert _mode(server.store_dir) == 0o700
    finally:
        server.stop()
