"""The traffic model: which dossiers and feedback arrive when, and their events in time order.

An item arriving on day D goes to an agency of the org tree valid at D, with a TTHC in force at D
at that agency's level, and keeps that agency for its whole lifecycle (the metrics fold a dossier
by agency and id). Desks are closed on public holidays, so nothing arrives on them.

Each day's arrivals come from an RNG seeded with (seed, day) and each item's lifecycle from its own
seed, so a rerun with the same seed yields the same events with the same event_ids: republishing
history duplicates it (collapsed by Nats-Msg-Id and ingest) instead of inventing new dossiers.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from itertools import accumulate
from operator import itemgetter

from schemas.v1.events import Event
from tools.simulator.catalog import AGENCIES, PROCEDURES, Agency, Procedure, procedures_for
from tools.simulator.lifecycle import dossier_lifecycle, feedback_lifecycle
from tools.simulator.workdays import ICT, day_kind, office_time

__all__ = [
    "ICT",
    "Arrival",
    "Timeline",
    "arrivals",
    "dossier_lifecycle",
    "draw_arrival",
    "feedback_lifecycle",
    "generate",
    "receiving_agencies",
]

_FEEDBACK_PER_DOSSIER = 0.02
_WEEKDAY_SCALE = (1.0, 1.0, 1.0, 1.0, 1.0, 0.08, 0.0)  # a few wards receive on Saturday mornings
# The days the org tree or the catalogue changes: the offer is the same between two of them.
_VERSIONS: tuple[Agency | Procedure, ...] = (*AGENCIES, *PROCEDURES)
_CHANGES = sorted(
    {x.valid_from for x in _VERSIONS} | {x.valid_to for x in _VERSIONS if x.valid_to is not None}
)


@dataclass(frozen=True, slots=True)
class _Offer:
    """Who receives what on the days between two changes, with cumulative weights for choices()."""

    agencies: tuple[Agency, ...]
    agency_cum: list[float]
    procedures: dict[str, tuple[tuple[Procedure, ...], list[float]]]  # by agency code


def _offer_at(day: date) -> _Offer:
    # Before the seed's first day there is no tree: its first one stands in.
    return _offer(max(1, bisect_right(_CHANGES, day)))


def receiving_agencies(day: date) -> tuple[Agency, ...]:
    """The agencies that receive dossiers on `day` (in the tree then, with TTHC to handle)."""
    return _offer_at(day).agencies


@cache
def _offer(period: int) -> _Offer:
    day = _CHANGES[period - 1]  # the period's first day
    offered = {a: procedures_for(a, day) for a in AGENCIES if a.valid_at(day)}
    agencies = tuple(a for a, ps in offered.items() if ps)  # an agency with no TTHC receives none
    procedures = {a.code: (ps, list(accumulate(p.weight for p in ps))) for a, ps in offered.items()}
    return _Offer(agencies, list(accumulate(a.weight for a in agencies)), procedures)


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
            return feedback_lifecycle(rng, self.agency, self.at)
        return dossier_lifecycle(rng, self.agency, self.procedure, self.at)


def draw_arrival(
    rng: random.Random,
    at: datetime,
    feedback_share: float = _FEEDBACK_PER_DOSSIER / (1 + _FEEDBACK_PER_DOSSIER),
) -> Arrival:
    """One arrival at `at`, with the province's mix of agencies and procedures on its date."""
    offer = _offer_at(at.astimezone(ICT).date())
    agency = rng.choices(offer.agencies, cum_weights=offer.agency_cum)[0]
    seed = rng.getrandbits(64)
    if rng.random() < feedback_share:
        return Arrival(seed, at, agency, None)
    procedures, cum_weights = offer.procedures[agency.code]
    procedure = rng.choices(procedures, cum_weights=cum_weights)[0]
    return Arrival(seed, at, agency, procedure)


def _day_scale(day: date) -> float:
    kind = day_kind(day)
    if kind == "holiday":
        return 0.0
    return 1.0 if kind == "makeup_workday" else _WEEKDAY_SCALE[day.weekday()]


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
        mean = (dossiers_per_day + feedback) * _day_scale(day)
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
