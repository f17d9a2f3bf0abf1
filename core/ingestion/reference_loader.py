"""Reference data from a file, as reference events: published through NATS or stored directly.

The file is JSON: {"agencies": [...], "procedures": [...], "note": "..."}. Its records carry the
contract's fields except event_id, schema_version, occurred_at, source and type, which the loader
fills: event_id is a UUIDv5 of the record's content and occurred_at its valid_from (midnight in
Asia/Ho_Chi_Minh), so loading the same file again produces the very same events and changes
nothing, at every layer (stream duplicate window, the ingest's event_id check).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from nats.js import JetStreamContext
from pydantic import ValidationError

from core.ingestion.common import MessageMeta
from core.ingestion.reference import ReferenceRow, process_reference
from core.ingestion.writer import ReferenceWriter
from core.reference.seed import SEED_FILE
from schemas.subjects import reference_subject
from schemas.v1.reference import (
    AGENCY_TYPE,
    PROCEDURE_TYPE,
    AgencyReference,
    ReferenceEvent,
    parse_reference,
    reference_code,
)

log = logging.getLogger(__name__)

# Fixed forever: event ids of loaded records are derived from it.
NAMESPACE = uuid.UUID("5d0c3b52-8f51-4c1e-9a4e-6d6f74637561")
SECTIONS = {"agencies": AGENCY_TYPE, "procedures": PROCEDURE_TYPE}
_FILLED = ("event_id", "schema_version", "occurred_at", "source", "type")


class CatalogFileError(ValueError):
    """The file is not a valid reference file; nothing was published or stored."""


@dataclass
class LoadCount:
    new: int = 0  # published to the stream / stored
    known: int = 0  # already in the stream's duplicate window / already stored


def read_catalog_file(path: Path) -> list[ReferenceEvent]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CatalogFileError(f"not JSON: {exc}") from exc
    return events_from_data(data, f"catalog-file:{path.name}"[:64])


def events_from_data(data: Any, source: str) -> list[ReferenceEvent]:
    """Validate every record and fill the envelope; raises CatalogFileError on the first fault."""
    if not isinstance(data, dict) or not set(data) <= {*SECTIONS, "note"}:
        raise CatalogFileError('expected {"agencies": [...], "procedures": [...], "note": "..."}')
    events: list[ReferenceEvent] = []
    seen: set[tuple[str, str, Any]] = set()
    for section, event_type in SECTIONS.items():
        records = data.get(section, [])
        if not isinstance(records, list):
            raise CatalogFileError(f"{section} must be a list")
        for i, record in enumerate(records):
            event = _event(record, event_type, source, f"{section}[{i}]")
            key = (section, reference_code(event), event.valid_from)
            if key in seen:
                raise CatalogFileError(f"{section}[{i}]: {key[1]} from {key[2]} appears twice")
            seen.add(key)
            events.append(event)
    return events


def _event(record: Any, event_type: str, source: str, where: str) -> ReferenceEvent:
    if not isinstance(record, dict):
        raise CatalogFileError(f"{where}: not an object")
    filled = sorted(set(record) & set(_FILLED))
    if filled:
        raise CatalogFileError(f"{where}: {filled} are filled by the loader; remove them")
    content = {"type": event_type, **record}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    payload = {
        **content,
        "event_id": str(uuid.uuid5(NAMESPACE, canonical)),
        "schema_version": 1,
        "occurred_at": f"{record.get('valid_from')}T00:00:00+07:00",
        "source": source,
    }
    try:  # from JSON, exactly as the ingest will parse it
        return parse_reference(json.dumps(payload, ensure_ascii=False))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or '<record>'}: {e['msg']}"
            for e in exc.errors(include_url=False)  # loc[0] is the record type
        )
        raise CatalogFileError(f"{where}: {problems}") from exc


def encode(event: ReferenceEvent) -> tuple[str, bytes]:
    """(subject, payload) of a reference event, as an integrator would publish it."""
    kind = "agency" if isinstance(event, AgencyReference) else "procedure"
    return reference_subject(kind, reference_code(event)), event.model_dump_json().encode()


def _section(event: ReferenceEvent) -> str:
    return "agencies" if isinstance(event, AgencyReference) else "procedures"


async def publish_events(
    js: JetStreamContext, events: Sequence[ReferenceEvent]
) -> dict[str, LoadCount]:
    """Publish each event with Nats-Msg-Id = event_id, waiting for the stream's ack."""
    counts = {section: LoadCount() for section in SECTIONS}
    for event in events:
        subject, payload = encode(event)
        ack = await js.publish(subject, payload, headers={"Nats-Msg-Id": str(event.event_id)})
        count = counts[_section(event)]
        if ack.duplicate:
            count.known += 1
        else:
            count.new += 1
    return counts


def store_events(client: Client, events: Sequence[ReferenceEvent]) -> dict[str, LoadCount]:
    """Write the events straight into the store, through the ingest's processor and writer."""
    writer = ReferenceWriter(client)
    published_at = datetime.now(UTC)
    counts: dict[str, LoadCount] = {}
    for section in SECTIONS:
        rows: list[ReferenceRow] = []
        for event in (e for e in events if _section(e) == section):
            subject, payload = encode(event)
            row = process_reference(payload, MessageMeta(subject, 0, published_at))
            assert isinstance(row, ReferenceRow), row  # validated by events_from_data
            rows.append(row)
        result = writer.write(rows, [])
        if result.refused:
            raise CatalogFileError(f"the store refused: {result.refused[0].detail}")
        counts[section] = LoadCount(new=result.stored, known=result.duplicates)
    return counts


def summary(counts: Mapping[str, LoadCount], new: str, known: str) -> list[str]:
    return [f"{section}: {c.new} {new}, {c.known} {known}" for section, c in counts.items()]


async def seed_if_empty(
    client: Client, js: JetStreamContext, path: Path = SEED_FILE
) -> dict[str, LoadCount] | None:
    """Publish the seed file (core/reference/seed.py) when no agency is stored yet; None when
    there was nothing to do.

    Published through NATS like `motcua catalog load`, so seeded data takes the same path as any
    later correction (stream → ingest → tables) and stays replayable from MOTCUA_REFERENCE.
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
