"""The Khánh Hòa sample reference data, loaded by `motcua up` into an empty store.

Published through NATS like `motcua catalog load`, so seeded data takes the same path as any
later correction (stream → ingest → tables) and stays replayable from MOTCUA_REFERENCE.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from clickhouse_connect.driver.client import Client
from nats.js import JetStreamContext

from core.ingestion.reference_loader import LoadCount, publish_events, read_catalog_file

log = logging.getLogger(__name__)

SEED_FILE = Path(__file__).parent / "data" / "khanhhoa.json"


async def seed_if_empty(
    client: Client, js: JetStreamContext, path: Path = SEED_FILE
) -> dict[str, LoadCount] | None:
    """Publish the seed file when no agency is stored yet; None when there was nothing to do.

    Harmless if the seed is already on its way (published, not yet stored): the events are the
    same, so the stream or the ingest drops the repeat.
    """
    stored = await asyncio.to_thread(
        lambda: int(client.query("SELECT count() FROM agencies").result_rows[0][0])
    )
    if stored:
        return None
    counts = await publish_events(js, read_catalog_file(path))
    log.info(
        "reference seed %s published: %s",
        path.name,
        ", ".join(f"{k} {c.new} (+{c.known} already sent)" for k, c in counts.items()),
    )
    return counts
