"""The traffic model: which dossiers and feedback arrive when, and their events in time order.

Each day's arrivals come from an RNG seeded with (seed, day) and each item's lifecycle from its own
seed, so a rerun with the same seed yields the same events with the same event_ids: republishing
history duplicates it (collapsed by Nats-Msg-Id and ingest) instead of inventing new dossiers.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from operator import itemgetter

from schemas.v1.events import Event
from services.simulator.catalog import AGENCIES, Agency, Procedure, procedures_for
from services.simulator.lifecycle import dossier_lifecycle, feedback_lifecycle
from services.simulator.restructuring import relocate, successor
from services.simulator.workdays import ICT, office_time

__all__ = [
    "ICT",
    "Arrival",
    "Timeline",
    "arrivals",
    "dossier_lifecycle",
    "draw_arrival",
    "feedback_lifecycle",
    "generate",
]

_FEEDBACK_PER_DOSSIER = 0.02
_WEEKDAY_SCALE = (1.0, 1.0, 1.0, 1.0, 1.0, 0.08, 0.0)  # a few wards receive on Saturday mornings
_AGENCY_CUM = list(accumulate(a.weight for a in AGENCIES))
_OFFER = {a.code: procedures_for(a) for a in AGENCIES}
_OFFER_CUM = {code: list(accumulate(p.weight for p in ps)) for code, ps in _OFFER.items()}


@dataclass(frozen=True, slots=True)
class Arrival:
    """A dossier (with its procedure) or a feedback item (procedure None); its whole lifecycle is a
    pure function of these fields."""

    seed: int
    at: datetime
    agency: Agency
    procedure: Procedure | None

    def lifecycle(self) -> list[Event]:
        rng = random.Random(self.seed)
        if self.procedure is None:
            events = feedback_lifecycle(rng, self.agency, self.at)
        else:
            events = dossier_lifecycle(rng, self.agency, self.procedure, self.at)
        moved_to = successor(self.agency, self.at, self.seed)
        return relocate(events, moved_to) if moved_to else events


def draw_arrival(
    rng: random.Random,
    at: datetime,
    feedback_share: float = _FEEDBACK_PER_DOSSIER / (1 + _FEEDBACK_PER_DOSSIER),
) -> Arrival:
    """One arrival at `at`, with the province's mix of agencies and procedures."""
    agency = rng.choices(AGENCIES, cum_weights=_AGENCY_CUM)[0]
    seed = rng.getrandbits(64)
    if rng.random() < feedback_share:
        return Arrival(seed, at, agency, None)
    procedure = rng.choices(_OFFER[agency.code], cum_weights=_OFFER_CUM[agency.code])[0]
    return Arrival(seed, at, agency, procedure)


def arrivals(
    seed: int,
    after: datetime,
    until: datetime,
    dossiers_per_day: float,
    feedback_per_day: float | None = None,
) -> Iterator[Arrival]:
    """Arrivals with after < at <= until. `dossiers_per_day` is per working day, province-wide.

    Each day is drawn from its own RNG, so windows that share a day yield the same arrivals for
    it: a restart regenerates the same history."""
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("after and until must be timezone-aware")
    feedback = (
        dossiers_per_day * _FEEDBACK_PER_DOSSIER if feedback_per_day is None else feedback_per_day
    )
    day = after.astimezone(ICT).date()
    while day <= until.astimezone(ICT).date():
        rng = random.Random(f"{seed}:{day.isoformat()}")
        mean = (dossiers_per_day + feedback) * _WEEKDAY_SCALE[day.weekday()]
        count = max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean > 0 else 0
        share = feedback / (dossiers_per_day + feedback) if mean > 0 else 0.0
        for _ in range(count):
            arrival = draw_arrival(rng, office_time(rng, day), share)
            if after < arrival.at <= until:
                yield arrival
        day += timedelta(days=1)


class Timeline:
    """Arrivals whose lifecycles are still unfolding, released in occurred_at order.

    Holds arrivals, not events: a lifecycle is regenerated from its seed when it has events due,
    which keeps a long live run's memory to ~260 bytes per open item."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, int, Arrival]] = []  # (next at, tie, index, item)
        self._tie = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, items: Iterable[Arrival]) -> None:
        for item in items:
            heapq.heappush(self._heap, (item.at, self._tie, 0, item))
            self._tie += 1

    def release(self, until: datetime) -> list[Event]:
        """Every not yet released event with occurred_at <= until, in occurred_at order.

        Ties are broken by item and position, never by release order, so releasing in steps
        yields exactly what one release would."""
        due: list[tuple[datetime, int, int, Event]] = []
        while self._heap and self._heap[0][0] <= until:
            _, tie, index, item = heapq.heappop(self._heap)
            events = item.lifecycle()
            while index < len(events) and events[index].occurred_at <= until:
                due.append((events[index].occurred_at, tie, index, events[index]))
                index += 1
            if index < len(events):
                heapq.heappush(self._heap, (events[index].occurred_at, tie, index, item))
        due.sort(key=itemgetter(0, 1, 2))
        return [event for *_, event in due]


def generate(
    seed: int,
    start: datetime,
    end: datetime,
    dossiers_per_day: float,
    feedback_per_day: float | None = None,
) -> Iterator[Event]:
    """History for items arriving in (start, end], in occurred_at order. Events after `end` are
    not yielded: dossiers still open at `end` stay open."""
    timeline = Timeline()
    timeline.add(arrivals(seed, start, end, dossiers_per_day, feedback_per_day))
    yield from timeline.release(end)
