"""What the integrators send of what the source systems record: every event as it happens, and
each agency's daily manifest once its day is over, less what a fault withholds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta

from schemas.v1.events import Event, ManifestDaily
from tools.simulator.faults import NO_FAULTS, Faults
from tools.simulator.manifests import Ledger, local_day
from tools.simulator.workdays import ICT


class Feed:
    """The province's feeds from `first_day` on (the simulated world's first day).

    Pure: events in, events out, times from the events and the caller, so a rerun sends the same
    sequence (manifests included, with the same ids)."""

    def __init__(self, first_day: date, faults: Faults = NO_FAULTS) -> None:
        self.ledger = Ledger(first_day)
        self.faults = faults
        self.lost: list[Event] = []  # the lost batches' events, in time order, until sent

    def send(self, events: Iterable[Event], until: datetime) -> Iterator[Event]:
        """`events` (every event the sources recorded up to `until`, in occurred_at order, none
        before an earlier call's `until`) as sent, with the manifests of the days that ended,
        each at its time among them."""
        for event in events:
            yield from self._sent(self.ledger.close(event.occurred_at))
            self.ledger.record(event)  # the source's register: whatever happens to the feed
            if self.faults.silenced(event):
                continue
            if self.faults.in_lost_batch(event):
                self.lost.append(event)
            else:
                yield event
        yield from self._sent(self.ledger.close(until))

    def _sent(self, manifests: list[ManifestDaily]) -> Iterator[Event]:
        return (m for m in manifests if not self.faults.silenced(m))

    def take_lost(self, until: datetime) -> list[Event]:
        """The lost batches' events of the days over by `until`, to be sent late; they are no
        longer kept."""

        def over(event: Event) -> bool:
            end = datetime.combine(local_day(event.occurred_at) + timedelta(days=1), time(), ICT)
            return end <= until

        taken = [event for event in self.lost if over(event)]
        self.lost = [event for event in self.lost if not over(event)]
        return taken
