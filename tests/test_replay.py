"""`motcua replay` rebuilds every derived table and the figures come out the same."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from clickhouse_connect.driver.client import Client

from core.figures import report_ii06a
from core.figures.definitions import METRICS
from core.figures.metric_query import metric_query
from core.figures.periods import Period
from core.figures.refolder import replay_all
from core.ingestion.common import MessageMeta
from core.ingestion.processor import EventRow, process
from core.ingestion.writer import EventWriter
from core.messaging.nats_server import EmbeddedNats, free_port
from core.messaging.streams import ensure_streams
from core.storage.replay import derived_views
from tests.helpers import publish, received, resolved
from tests.test_pipeline import d


def store(client: Client, events: list[dict[str, Any]]) -> None:
    rows = []
    for n, e in enumerate(events):
        meta = MessageMeta(
            f"motcua.events.{e['agency_code']}.{e['type']}", n + 1, datetime.now(UTC)
        )
        row = process(json.dumps(e).encode(), meta)
        assert isinstance(row, EventRow)
        rows.append(row)
    EventWriter(client).write(rows, [])


def figures(client: Client) -> dict[str, Any]:
    period = Period.from_dates(date(2026, 1, 1), date(2026, 12, 31))
    now = datetime(2026, 12, 31, tzinfo=UTC)
    out: dict[str, Any] = {
        m: [
            (r.group, r.numerator, r.denominator, r.events)
            for r in metric_query(m, period=period, now=now, group_by="agency").run(client)
        ]
        for m in METRICS
    }
    out["ii06a"] = [r.as_dict() for r in report_ii06a.compute(client, period, now).rows]
    out["receipts"] = client.query(
        "SELECT agency_code, toDate(received_at, 'Asia/Ho_Chi_Minh') AS day, channel, count() "
        "FROM dossiers WHERE received_at IS NOT NULL GROUP BY ALL ORDER BY ALL"
    ).result_rows
    return out


def test_replay_rebuilds_the_same_figures(clickhouse: Client, agency: str) -> None:
    # Catches: a derived table the replay forgets, a view whose SELECT cannot be re-run over the
    # log, or state that depends on insert history rather than on the events themselves.
    events = [received(agency, f"R{i}", d(2 + i), due=d(9, 17)) for i in range(5)]
    events += [resolved(agency, f"R{i}", d(8)) for i in range(3)]
    store(clickhouse, events)
    before = figures(clickhouse)
    assert any(before[m] for m in METRICS)
    # State that no event supports: a rebuild from the log must drop it.
    clickhouse.command(
        "INSERT INTO dossier_facts (agency_code, dossier_id, valid_from, valid_to, part_month, "
        "version, sign, received_at, due_at, channel) VALUES ('GHOST', 'G', "
        "'2026-03-01 00:00:00', '2299-12-31 00:00:00', 999999, 1, 1, '2026-03-01 00:00:00', "
        "'2026-03-02 00:00:00', 'online')"
    )
    assert figures(clickhouse) != before
    steps: list[str] = []
    counts = replay_all(clickhouse, progress=lambda done, total, label: steps.append(label))
    assert {v.target.split(".")[-1] for v in derived_views(clickhouse)} >= {
        "dossier_parts",
        "feedback_parts",
        "manifests",
    }
    assert counts["motcua.dossier_parts"] > 0
    assert counts["dossier_facts"] > 0
    assert steps
    assert figures(clickhouse) == before


@pytest.mark.asyncio(loop_scope="session")
async def test_replay_from_the_stream_fills_a_fresh_store(tmp_path: Path) -> None:
    # Catches: a fresh store that cannot be rebuilt from what JetStream retains, or a rebuild
    # that stores invalid events instead of dead-lettering them.
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    await server.start()
    try:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream())
        for i in range(40):
            await publish(nc, received("RS", f"S{i}", d(2), due=d(6, 17)))
        await publish(nc, b"{broken", subject="motcua.events.RS.dossier.received")
        await nc.drain()
        env = {
            **os.environ,
            "MOTCUA_DATA_DIR": str(tmp_path / "data"),
            "MOTCUA_NATS_URL": server.url,
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "motcua.cli", "replay", "--from-stream"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    assert "40 events stored, 1 dead-lettered" in done.stdout
    assert "motcua.dossier_parts: 40 rows" in done.stdout
    assert "dossier_facts: 40 rows" in done.stdout
