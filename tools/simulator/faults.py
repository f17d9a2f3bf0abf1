"""Faults of a simulated feed, to show what reconciliation and the silent-feed alert catch.

- A silent feed: from an instant on, an agency's integrator sends nothing at all, neither events
  nor daily manifests (a district's system stopped publishing).
- A lost batch: the agency's events of one local day from noon on never reach NATS (the
  integrator's queue dropped them), while that day's manifest, made from the source's own
  register, still counts those dossiers and lists their ids. The batch is kept, so it can be
  sent later and the gap closes.

The source system itself goes on recording through both: only what is sent is affected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from schemas.v1.events import Event, ManifestDaily
from tools.simulator.catalog import AGENCIES
from tools.simulator.workdays import ICT, add_working_days

# The lost batch is the afternoon's: a part of the day, so the day is short of some dossiers
# (missing ids) rather than empty (which the silent-feed alert would also see).
LOST_BATCH_FROM = time(12)
_AGENCY_CODES = frozenset(a.code for a in AGENCIES)


@dataclass(frozen=True, slots=True)
class Silence:
    """`agency` silent from `start` on: an instant, a local day (from its 00:00), "now" (the
    simulator's start), or None (the second working day before the start day)."""

    agency: str
    start: datetime | date | str | None = None


@dataclass(frozen=True, slots=True)
class LostBatch:
    """`agency`'s batch of `day` lost; None: the last working day before the start day."""

    agency: str
    day: date | None = None


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults at fixed instants, as the feed applies them."""

    silent_from: dict[str, datetime] = field(default_factory=dict)
    lost_batches: frozenset[tuple[str, date]] = frozenset()

    def silenced(self, event: Event) -> bool:
        start = self.silent_from.get(event.agency_code)
        return start is not None and event.occurred_at >= start

    def in_lost_batch(self, event: Event) -> bool:
        if isinstance(event, ManifestDaily):
            return False
        local = event.occurred_at.astimezone(ICT)
        batch = (event.agency_code, local.date())
        return batch in self.lost_batches and local.time() >= LOST_BATCH_FROM

    def describe(self) -> list[str]:
        lines = [
            f"{code}: feed silent from {t.isoformat()}" for code, t in self.silent_from.items()
        ]
        lines += [
            f"{code}: the batch of {day} from {LOST_BATCH_FROM:%H:%M} is lost"
            for code, day in sorted(self.lost_batches)
        ]
        return lines


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The faults asked for (`motcua up --simulate-…`), some relative to the simulator's start.
    `republish_after`: the lost batches are sent this long after the start (once their day is
    over); None: never in this run."""

    silences: tuple[Silence, ...] = ()
    lost_batches: tuple[LostBatch, ...] = ()
    republish_after: timedelta | None = None

    def at(self, started: datetime) -> Faults:
        today = datetime.combine(started.astimezone(ICT).date(), time(), ICT)
        silent: dict[str, datetime] = {}
        for silence in self.silences:
            start = _instant(silence.start, started, today)
            silent[silence.agency] = min(start, silent.get(silence.agency, start))
        lost = frozenset(
            (batch.agency, batch.day or add_working_days(today, -1).date())
            for batch in self.lost_batches
        )
        return Faults(silent, lost)


def _instant(start: datetime | date | str | None, started: datetime, today: datetime) -> datetime:
    if isinstance(start, datetime):
        return start
    if isinstance(start, date):
        return datetime.combine(start, time(), ICT)
    if start == "now":
        return started
    # Two whole working days without a word by default: an alert to see at once.
    return add_working_days(today, -2)


NO_FAULTS = Faults()


def _agency(text: str) -> str:
    if text not in _AGENCY_CODES:
        raise ValueError(f"unknown agency code {text!r}")
    return text


def parse_silence(text: str) -> Silence:
    """AGENCY[@START]: START is YYYY-MM-DD, an ISO time (naive: Vietnam's) or "now"."""
    code, _, start = text.partition("@")
    agency = _agency(code)
    if not start or start == "now":
        return Silence(agency, start or None)
    try:
        if len(start) == len("YYYY-MM-DD"):
            return Silence(agency, date.fromisoformat(start))
        at = datetime.fromisoformat(start)
    except ValueError:
        raise ValueError(f"{start!r} is not a date, a time or 'now'") from None
    return Silence(agency, at if at.tzinfo else at.replace(tzinfo=ICT))


def parse_lost_batch(text: str) -> LostBatch:
    """AGENCY[@DAY]: DAY is YYYY-MM-DD."""
    code, _, day = text.partition("@")
    agency = _agency(code)
    if not day:
        return LostBatch(agency)
    try:
        return LostBatch(agency, date.fromisoformat(day))
    except ValueError:
        raise ValueError(f"{day!r} is not a date (YYYY-MM-DD)") from None
