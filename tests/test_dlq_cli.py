"""`motcua dlq replay` as an operator runs it on an embedded data directory (motcua up stopped):
its own store and nats-server, in subprocesses (chDB opens one directory per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from core.messaging.nats_server import free_port
from schemas import export

EXAMPLE = Path(export.__file__).parent / "v1" / "examples" / "dossier.received.json"

# Files a dead letter refused under an older, stricter rule: valid under today's processor.
SEED = """
import sys
from datetime import UTC, datetime
from core.storage.clickhouse import connect
from core.storage.migrate import migrate

raw = open(sys.argv[2], "rb").read()
client = connect(f"chdb://{sys.argv[1]}/clickhouse")
migrate(client)
at = datetime(2026, 3, 2, tzinfo=UTC)
client.insert(
    "dead_letters",
    [("motcua.events.STNMT.dossier.received", 5, at, "STNMT", "", "invalid_field", "old rule", raw),
     ("motcua.events.STNMT.dossier.received", 6, at, "STNMT", "", "invalid_json", "junk", b"{x")],
    column_names=["subject", "stream_seq", "published_at", "agency_code", "source", "reason",
                  "detail", "raw"],
)
"""

# Reads back what the replay left in the stream, as the admin user of the embedded server.
READ_STREAM = """
import asyncio, json, sys
from pathlib import Path
import nats
from core.messaging.nats_auth import start_embedded

async def main():
    server, urls, _ = await start_embedded(Path(sys.argv[1]) / "nats", int(sys.argv[2]))
    try:
        nc = await nats.connect(urls.admin)
        js = nc.jetstream()
        info = await js.stream_info("MOTCUA_EVENTS")
        msg = await js.get_msg("MOTCUA_EVENTS", info.state.last_seq)
        print(json.dumps({"messages": info.state.messages, "subject": msg.subject,
                          "data": msg.data.decode(), "headers": dict(msg.headers or {})}))
        await nc.close()
    finally:
        server.stop()

asyncio.run(main())
"""


def test_dlq_replay_command_on_an_embedded_data_directory(tmp_path: Path) -> None:
    # Catches: the command unable to reach the stream of a stopped `motcua up` (auth, missing
    # stream), publishing what still fails, changing the bytes, or republishing on a second run.
    data = tmp_path / "data"
    port = free_port()
    env = {**os.environ, "MOTCUA_DATA_DIR": str(data), "MOTCUA_NATS_PORT": str(port)}
    env.pop("MOTCUA_NATS_URL", None)
    env.pop("MOTCUA_CLICKHOUSE_URL", None)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("-c", textwrap.dedent(SEED), str(data), str(EXAMPLE))
    dry = run("-m", "motcua.cli", "dlq", "replay", "--dry-run")
    assert "would republish: 1" in dry and "still refused, invalid_json: 1" in dry
    first = run("-m", "motcua.cli", "dlq", "replay", "--integrator", "STNMT")
    assert "republished: 1" in first
    second = run("-m", "motcua.cli", "dlq", "replay")
    assert "1 dead letters not replayed before" in second and "republished: 0" in second

    stream = json.loads(run("-c", textwrap.dedent(READ_STREAM), str(data), str(port)))
    assert stream["messages"] == 1
    assert stream["subject"] == "motcua.events.STNMT.dossier.received"
    assert stream["data"].encode() == EXAMPLE.read_bytes()
    event_id = json.loads(EXAMPLE.read_bytes())["event_id"]
    assert stream["headers"]["Nats-Msg-Id"] == f"{event_id}#replay"
