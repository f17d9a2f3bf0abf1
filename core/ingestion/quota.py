"""How many refused bytes one integrator may have kept a day (issue 14, finding 5).

A dead letter keeps the bytes it refused, so an integrator publishing garbage as fast as it can
filled the store's disk with them (and the API's memory, listing them). Past `bytes_per_day` of
refused payloads from one integrator (the subject's agency token) in one Vietnam day, a dead
letter is still written and published with its reason, its detail and its size, but without its
bytes: the refusal never vanishes, the flood stops growing the store. Well-behaved integrators
refuse a few KB a day.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time

from core.ingestion.common import DeadLetter
from core.zone import VN


class DeadLetterQuota:
    def __init__(
        self, bytes_per_day: int, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.bytes_per_day = bytes_per_day
        self._clock = clock
        self._day: date | None = None
        self._used: dict[str, int] = {}
        self.dropped = 0  # letters whose bytes were not kept, since start

    def today(self) -> date:
        return self._clock().astimezone(VN).date()

    def day_start(self) -> datetime:
        """When today began in Vietnam: what the store keeps since then counts (start())."""
        return datetime.combine(self.today(), time(), VN)

    def start(self, used_today: dict[str, int]) -> None:
        """What the store already keeps of today's refused bytes, per integrator."""
        self._day, self._used = self.today(), dict(used_today)

    def keep(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        day = self.today()
        if day != self._day:
            self._day, self._used = day, {}
        kept = []
        for letter in letters:
            used = self._used.get(letter.agency_code, 0)
            size = len(letter.raw)
            if used + size <= self.bytes_per_day:
                self._used[letter.agency_code] = used + size
                kept.append(letter)
                continue
            self.dropped += 1
            detail = (
                f"{letter.detail} [{size} bytes refused; not kept: this integrator's refused "
                f"bytes passed {self.bytes_per_day} today]"
            )
            kept.append(dataclasses.replace(letter, raw=b"", detail=detail))
        return kept
