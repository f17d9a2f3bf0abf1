"""What a target's forecast speaks of: the statuses (and their Vietnamese labels), a day of the
daily series, the policy that turns a forecast into a status, the forecast and the evaluation,
and what the forecast needs of a target. core/plans/projection.py computes them; nothing here
reads the store."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Literal

Status = Literal["met", "on_track", "at_risk", "missed", "insufficient_data"]
STATUSES: tuple[Status, ...] = ("met", "on_track", "at_risk", "missed", "insufficient_data")
STATUS_LABELS: dict[str, str] = {
    "met": "Đạt",
    "on_track": "Đúng tiến độ",
    "at_risk": "Có nguy cơ không đạt",
    "missed": "Không đạt",
    "insufficient_data": "Chưa đủ số liệu",
}
Z80 = 1.2815515655446004  # two-sided 80%: the interval reported with every forecast


@dataclass(frozen=True)
class Day:
    day: date
    hits: int  # items in the numerator
    total: int  # items in the population
    pending: int = 0  # items not decided yet (neither in the numerator nor finally out)


@dataclass(frozen=True)
class Policy:
    """How a forecast becomes a status; configurable per deployment (core/plans/model.py
    carries the plan's own `min_count`)."""

    window: int = 28  # days of recent history the volume and rate come from
    prior_strength: float = 20.0  # pseudo-items of period-to-date rate the recent rate starts from
    on_track_probability: float = 0.7  # below this chance of meeting the target: at risk


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Forecast:
    value: float | None  # expected value at the period's end
    low: float | None  # 80% interval
    high: float | None
    expected_total: float  # expected population at the period's end
    probability: float | None  # chance of meeting the target, under the forecast
    method: str


@dataclass(frozen=True)
class Evaluation:
    numerator: int
    denominator: int
    pending: int
    value: float | None
    status: Status
    forecast: Forecast
    remaining_working_days: int
    budget: int | None = None  # ceilings: numerator items still affordable at expected volume
    needed: int | None = None  # floors: numerator items still needed at expected volume
    needed_per_working_day: float | None = None
    burn_rates: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why this status, in one Vietnamese sentence


@dataclass(frozen=True)
class Target:
    """What evaluate() needs of a plan target (core.plans.model.Target has more)."""

    comparator: str
    threshold: float
    min_count: int
    # Whether a decided item can still change within the period (False for a dossier not yet
    # digitised: it may be tomorrow); only final failures make a miss certain before the end.
    final_failures: bool = True

    @property
    def ceiling(self) -> bool:
        return self.comparator in ("<", "<=")

    def meets(self, hits: float, total: float) -> bool:
        if total <= 0:
            return False
        return _compare(self.comparator, Fraction(hits) / Fraction(total), _exact(self.threshold))

    def limit(self, total: int) -> int:
        """Ceilings: the most numerator items `total` items may hold and still meet the target.
        Floors: the fewest they must hold. Exact (30% of 5,000 is 1,500, not 1,500.0000001)."""
        t = _exact(self.threshold) * total
        match self.comparator:
            case "<":
                return math.ceil(t) - 1
            case "<=":
                return math.floor(t)
            case ">=":
                return math.ceil(t)
            case ">":
                return math.floor(t) + 1
            case _:  # "==": the floor side; a plan never asks for exact equality of a rate
                return math.ceil(t)


def _exact(threshold: float) -> Fraction:
    return Fraction(repr(threshold))


def _compare(comparator: str, a: Fraction, b: Fraction) -> bool:
    return {
        "<": a < b,
        "<=": a <= b,
        ">=": a >= b,
        ">": a > b,
        "==": a == b,
    }[comparator]
