"""The simulated source system's own register, and the daily manifests (bảng kê cuối ngày) it
sends of it: per agency and local day, what it recorded, whatever reached motcua.

The register is fed every event the source records, before any fault of the feed (a lost batch,
a silent feed) drops it: a manifest is the source's truth, which motcua reconciles with what it
stored. Counting rules are the figures' own (schemas/v1/events.py ManifestDaily).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from uuid import UUID

from schemas.v1.events import (
    MANIFEST_MAX_IDS,
    DossierReceived,
    DossierResolved,
    DossierReturned,
    DossierWithdrawn,
    Event,
    FeedbackAnswered,
    FeedbackFiled,
    ManifestDaily,
)
from tools.simulator.catalog import agency_by_code
from tools.simulator.lifecycle import SOURCE, source_of
from tools.simulator.model import receiving_agencies
from tools.simulator.workdays import ICT

# A day's manifest leaves this long after its local midnight, as the example's integrator does.
MANIFEST_DELAY = timedelta(minutes=15)
# uuid5 namespace of the manifests' event ids (a fixed, arbitrary uuid: never change it, or a
# restart would publish every manifest again as a new version).
_NAMESPACE = UUID("6f1d2c3e-8a41-5b0e-9c7d-2e4f6a8b1c3d")
# In the simulated lifecycles a dossier ends once: resolved (maybe returned later) or withdrawn,
# never returned unresolved; the first of these is therefore coalesce(resolved, returned,
# withdrawn), the figures' end.
_ENDS = (DossierResolved, DossierReturned, DossierWithdrawn)


def manifest_time(day: date) -> datetime:
    """When the manifest of `day` is sent (its occurred_at): shortly after the day ended."""
    return datetime.combine(day + timedelta(days=1), time(), ICT) + MANIFEST_DELAY


def local_day(t: datetime) -> date:
    return t.astimezone(ICT).date()


def manifest_event_id(fields: dict[str, object]) -> UUID:
    """Stable per agency, day and content: the same manifest sent again (a restart replays the
    history) is a duplicate of the first; a manifest whose counts changed is a new version with
    an id of its own, never a conflicting copy of the old one."""
    return uuid.uuid5(_NAMESPACE, json.dumps(fields, sort_keys=True, default=str))


@dataclass(slots=True)
class _Day:
    """What the source recorded on one local day, by agency code."""

    received: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    filed: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    ids: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


class Ledger:
    """The source's register from `first_day` on (the simulated world starts then: nothing was
    received before it). Record events in occurred_at order; close a day once it is over."""

    def __init__(self, first_day: date) -> None:
        self.next_day = first_day  # the first day not yet closed
        self._days: defaultdict[date, _Day] = defaultdict(_Day)
        self._open: dict[str, str] = {}  # dossier id → agency code, received and not ended
        self._open_count: Counter[str] = Counter()  # by agency, at the end of the last closed day

    def record(self, event: Event) -> None:
        day = local_day(event.occurred_at)
        if day < self.next_day:
            raise ValueError(f"an event of {day} after its manifest was made: {event.event_id}")
        counts, agency = self._days[day], event.agency_code
        if isinstance(event, DossierReceived):
            self._open[event.dossier_id] = agency
            counts.received[agency] += 1
            counts.ids[agency].append(event.dossier_id)
        elif isinstance(event, _ENDS) and self._open.pop(event.dossier_id, None) is not None:
            counts.finished[agency] += 1
        elif isinstance(event, FeedbackFiled):
            counts.filed[agency] += 1
        elif isinstance(event, FeedbackAnswered):
            counts.answered[agency] += 1

    def close(self, until: datetime) -> list[ManifestDaily]:
        """The manifests of every day whose sending time is at or before `until`, day by day."""
        manifests: list[ManifestDaily] = []
        while manifest_time(self.next_day) <= until:
            manifests += self._close_day(self.next_day)
            self.next_day += timedelta(days=1)
        return manifests

    def _close_day(self, day: date) -> list[ManifestDaily]:
        counts = self._days.pop(day, _Day())
        self._open_count.update(counts.received)
        self._open_count.subtract(counts.finished)
        # Every agency the source serves that day gets one, zeros included: a zero manifest is
        # what tells a quiet day from a lost one. An abolished agency still reports while it
        # has dossiers open or activity.
        codes = {a.code for a in receiving_agencies(day)}
        codes |= {code for code, n in self._open_count.items() if n}
        for counter in (counts.received, counts.finished, counts.filed, counts.answered):
            codes |= set(counter)
        return [self._manifest(day, code, counts) for code in sorted(codes)]

    def _manifest(self, day: date, code: str, counts: _Day) -> ManifestDaily:
        ids = counts.ids.get(code, [])
        fields: dict[str, object] = {
            "agency_code": code,
            "day": day.isoformat(),
            "dossiers_received": counts.received[code],
            "dossiers_finished": counts.finished[code],
            "dossiers_open": self._open_count[code],
            "feedback_filed": counts.filed[code],
            "feedback_answered": counts.answered[code],
            # A big day's list would not fit one event: its count alone is reported.
            "received_ids": list(ids) if len(ids) <= MANIFEST_MAX_IDS else None,
        }
        agency = agency_by_code(code, day) or agency_by_code(code)
        return ManifestDaily.model_validate(
            {
                **fields,
                "type": "manifest.daily",
                "event_id": manifest_event_id(fields),
                "schema_version": 1,
                "occurred_at": manifest_time(day),
                "source": source_of(agency) if agency else SOURCE,
            }
        )
