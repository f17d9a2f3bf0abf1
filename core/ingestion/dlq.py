"""Replay of dead letters: re-run the current processor on stored dead letters after a fix
(the command, `motcua dlq replay`, is motcua/dlq_cli.py; the API calls it too).

Design: a dead letter that now passes is **published again to MOTCUA_EVENTS, on its original
subject and with its original bytes**, never inserted here. It then takes the one path every event
takes: the ingest validates it, inserts it, acks only after the insert, and drops it if its
`event_id` is already stored. So "append-only, ack only after insert, dedup by event_id" stay
properties of one code path instead of being re-implemented by a side door, and the replayed event
gets the same provenance (subject, new stream sequence, JetStream time) as any other.

- `Nats-Msg-Id` is `<event_id>#replay`, not the event_id: the refused original used the event_id
  and the stream would silently drop a republish inside its 2-hour duplicate window.
- Before publishing, events whose `event_id` is already in `events` (the integrator re-published a
  corrected event, or the dead letter was a `conflicting_duplicate`) are not published.
- Each dead letter handled is recorded in `dead_letter_replays` after the stream acknowledged the
  publish, so a second replay skips it. A crash between publish and record only means the next
  replay publishes it again, which the ingest's dedup by event_id makes harmless (tested).
- Dead letters that still fail stay as they are; their raw bytes are never touched.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.ingestion.common import DeadLetter, MessageMeta
from core.ingestion.dedup import replay_msg_id
from core.ingestion.processor import EventRow, process
from core.zone import utc
from schemas.subjects import EVENTS_PREFIX

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from nats.js import JetStreamContext

Processor = Callable[[bytes, MessageMeta], EventRow | DeadLetter]

REPLAY_COLUMNS = (
    "subject",
    "stream_seq",
    "published_at",
    "agency_code",
    "event_id",
    "outcome",
    "replay_seq",
)


@dataclass
class ReplayReport:
    dry_run: bool
    candidates: int = 0  # dead letters of the selection not replayed before
    republished: int = 0  # published again (or, with dry_run, would be)
    already_stored: int = 0  # pass now, but their event_id is stored already
    expired: int = 0  # raw bytes blanked by the retention TTL: nothing to replay
    still_refused: dict[str, int] = field(default_factory=dict)  # reason → count
    event_ids: list[str] = field(default_factory=list)  # of the republished ones

    def lines(self) -> list[str]:
        verb = "would republish" if self.dry_run else "republished"
        out = [
            f"{self.candidates} dead letters not replayed before",
            f"{verb}: {self.republished}",
            f"already stored (not republished): {self.already_stored}",
            f"raw bytes expired: {self.expired}",
        ]
        for reason, n in sorted(self.still_refused.items()):
            out.append(f"still refused, {reason}: {n}")
        return out


@dataclass(frozen=True)
class _Candidate:
    meta: MessageMeta
    agency_code: str
    raw: bytes


def select(
    client: Client,
    *,
    integrator: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
) -> list[_Candidate]:
    """Dead letters of event subjects, not yet replayed, oldest first."""
    rows = client.query(
        "SELECT subject, stream_seq, published_at, agency_code, raw FROM dead_letters FINAL "
        "WHERE startsWith(subject, {prefix:String}) "
        "AND (subject, stream_seq, published_at) NOT IN "
        "(SELECT subject, stream_seq, published_at FROM dead_letter_replays) "
        "AND ({integrator:Nullable(String)} IS NULL "
        "     OR agency_code = {integrator:Nullable(String)}) "
        "AND ({reason:Nullable(String)} IS NULL OR reason = {reason:Nullable(String)}) "
        "AND ({since:Nullable(DateTime64(3, 'UTC'))} IS NULL "
        "     OR dead_lettered_at >= {since:Nullable(DateTime64(3, 'UTC'))}) "
        "ORDER BY published_at, stream_seq",
        parameters={
            "prefix": EVENTS_PREFIX + ".",
            "integrator": integrator,
            "reason": reason,
            "since": since,
        },
        column_formats={"raw": "bytes"},
    ).result_rows
    return [
        _Candidate(MessageMeta(subject, seq, utc(at)), agency, bytes(raw))
        for subject, seq, at, agency, raw in rows
    ]


async def replay_dead_letters(
    client: Client,
    js: JetStreamContext | None,
    *,
    integrator: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    processor: Processor = process,
) -> ReplayReport:
    """Re-run `processor` (the current one) on the selected dead letters; republish those that
    pass and are not stored yet, and record every one handled. `js` may be None with dry_run."""
    if js is None and not dry_run:
        raise ValueError("a replay that is not a dry run needs a JetStream context")
    candidates = await asyncio.to_thread(
        select, client, integrator=integrator, reason=reason, since=since
    )
    report = ReplayReport(dry_run=dry_run, candidates=len(candidates))
    refused: Counter[str] = Counter()
    passing: list[tuple[_Candidate, str]] = []
    for c in candidates:
        if not c.raw:
            report.expired += 1
            continue
        result = processor(c.raw, c.meta)
        if isinstance(result, DeadLetter):
            refused[result.reason] += 1
        else:
            passing.append((c, str(result.event.event_id)))
    report.still_refused = dict(refused)
    stored = await asyncio.to_thread(_stored_ids, client, [eid for _, eid in passing])
    marks: list[tuple[Any, ...]] = []
    published: dict[str, int] = {}  # event_id → stream sequence of its republish
    for c, event_id in passing:
        key = (c.meta.subject, c.meta.stream_seq, c.meta.published_at, c.agency_code, event_id)
        if event_id in stored:
            report.already_stored += 1
            marks.append((*key, "already_stored", 0))
            continue
        if event_id not in published:  # the same event refused twice: publish it once
            report.republished += 1
            report.event_ids.append(event_id)
            published[event_id] = 0 if js is None or dry_run else await _publish(js, c, event_id)
        marks.append((*key, "republished", published[event_id]))
    if marks and not dry_run:
        await asyncio.to_thread(
            client.insert, "dead_letter_replays", marks, column_names=list(REPLAY_COLUMNS)
        )
    return report


async def _publish(js: JetStreamContext, c: _Candidate, event_id: str) -> int:
    ack = await js.publish(
        c.meta.subject,
        c.raw,
        headers={
            "Nats-Msg-Id": replay_msg_id(event_id),
            "Motcua-Replay-Of": f"{c.meta.subject}#{c.meta.stream_seq}",
        },
    )
    return int(ack.seq)


def _stored_ids(client: Client, event_ids: Sequence[str]) -> set[str]:
    if not event_ids:
        return set()
    rows = client.query(
        "SELECT DISTINCT toString(event_id) FROM events WHERE event_id IN {ids:Array(UUID)}",
        parameters={"ids": list(event_ids)},
    ).result_rows
    return {r[0] for r in rows}
