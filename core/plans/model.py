"""The shape of a plan file. Structure only: the checks that need the metric catalogue, the
reference data or several targets live in checks.py; line numbers in loader.py.

Semantics a later reader relies on:
- `threshold` is a ratio in 0–1 for rate metrics (30% is written 0.3).
- `scope.agencies`: an agency means itself and its subtree in the org tree valid at the period's
  end (core.figures.scope); no agencies means the whole province.
- `applies_to`: "scope" judges the scope as a whole only (a provincial aggregate such as "the
  province's online share ≥ 30%"); "each_agency" also judges every listed agency on its own
  subtree (or, with no agencies listed, every agency of the tree) against the same threshold.
- `per_agency`: an agency's own quota; it is judged on its subtree against its own threshold,
  whatever `applies_to` says.
- `period`: "year" | "quarter" | "month" are the calendar periods (Asia/Ho_Chi_Minh) inside the
  plan's validity, each judged on its own; {from, to} is one explicit range, both days included.
- `min_count`: no status is judged below this denominator, so small volumes do not flap.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

Comparator = Literal["<", "<=", ">=", ">", "=="]
PeriodKind = Literal["year", "quarter", "month"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("year", "quarter", "month")
INDEX766_PREFIX = "index766:"

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DateRange(_Data):
    """Whole days, both ends included (a plan's `valid: {from: 2022-01-01, to: 2022-12-31}`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"`to` ({self.end}) is before `from` ({self.start})")
        return self

    def overlaps(self, other: DateRange) -> bool:
        return self.start <= other.end and other.start <= self.end

    def contains(self, other: DateRange) -> bool:
        return self.start <= other.start and other.end <= self.end


def _period_tag(value: Any) -> str:
    return "range" if isinstance(value, dict | DateRange) else "kind"


# Tagged so that a bad {from, to} reports the range's error, not also "should be 'year'…".
Period = Annotated[
    Annotated[PeriodKind, Tag("kind")] | Annotated[DateRange, Tag("range")],
    Discriminator(_period_tag),
]


class Scope(_Data):
    agencies: tuple[str, ...] = ()  # agency codes; each includes its subtree
    domains: tuple[str, ...] = ()  # lĩnh vực codes, e.g. dat_dai
    levels: tuple[str, ...] = ()  # province | district | commune

    def key(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """Equal keys mean the same scope, whatever the order the file lists them in."""
        return frozenset(self.agencies), frozenset(self.domains), frozenset(self.levels)


class AgencyQuota(_Data):
    agency: str
    threshold: float


class Target(_Data):
    id: Identifier
    text: NonBlank  # the plan's Vietnamese text, quoted or closely paraphrased
    clause: NonBlank  # where the plan says it, e.g. "A.IV.5"
    metric: str  # a METRICS id, or "index766:<indicator id>"
    scope: Scope = Scope()
    comparator: Comparator
    threshold: float
    period: Period = "year"
    in_charge: NonBlank  # cơ quan chủ trì: an agency code of the reference data, or a name
    coordinating: tuple[NonBlank, ...] = ()  # cơ quan phối hợp, as the plan names them
    applies_to: Literal["scope", "each_agency"] = "each_agency"
    min_count: int = Field(default=20, ge=1)
    per_agency: tuple[AgencyQuota, ...] = ()
    notes: str = ""  # how the plan's words were encoded, where that needed a choice

    @field_validator("period", mode="before")
    @classmethod
    def _period_shape(cls, value: Any) -> Any:
        # One clear message instead of one error per member of the union.
        if isinstance(value, dict) or value in PERIOD_KINDS:
            return value
        raise ValueError(f"period must be year, quarter, month or {{from, to}}, not {value!r}")

    @property
    def indicator(self) -> str | None:
        """The QĐ 766 indicator id when the metric is one, else None."""
        if self.metric.startswith(INDEX766_PREFIX):
            return self.metric.removeprefix(INDEX766_PREFIX)
        return None

    def threshold_for(self, agency: str) -> float:
        for quota in self.per_agency:
            if quota.agency == agency:
                return quota.threshold
        return self.threshold

    def meets(self, value: float, threshold: float | None = None) -> bool:
        """Whether `value` satisfies the comparator against the threshold."""
        return _COMPARE[self.comparator](value, self.threshold if threshold is None else threshold)


class BurnAlert(_Data):
    """A multi-window burn-rate alert for ceiling targets (the SRE workbook's "multiwindow,
    multi-burn-rate alerts", in days instead of hours because dossiers arrive by the dozen, not by
    the thousand): it fires while the burn rate over both windows is at least `factor`, and the
    long window holds at least the target's `min_count` items. Windows count complete working
    days before today. Burn rate 1 spends the budget exactly as fast as the period allows; 4 over
    5 working days spends 4 × 5 / 250 = 8% of a year's budget in one week."""

    name: Identifier
    severity: Literal["critical", "warning"]
    long_working_days: int = Field(ge=1, le=260)
    short_working_days: int = Field(ge=1, le=260)
    factor: float = Field(gt=0)

    @model_validator(mode="after")
    def _short_inside_long(self) -> BurnAlert:
        if self.short_working_days > self.long_working_days:
            raise ValueError("short_working_days must not exceed long_working_days")
        return self

    @property
    def windows(self) -> tuple[int, int]:
        return self.long_working_days, self.short_working_days


# Fast: a sharp rise, caught within days. Slow: a sustained drift, such as a land office whose
# late share doubled, caught within weeks, long before the year's figure shows it.
DEFAULT_BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert(
        name="burn_fast",
        severity="critical",
        long_working_days=5,
        short_working_days=1,
        factor=4.0,
    ),
    BurnAlert(
        name="burn_slow",
        severity="warning",
        long_working_days=20,
        short_working_days=3,
        factor=2.0,
    ),
)


class Reason(_Data):
    vi: NonBlank
    en: NonBlank


class Unmeasurable(_Data):
    """A target of the plan that dossier and feedback events cannot measure, kept with why so
    that it never silently disappears."""

    id: Identifier
    text: NonBlank
    clause: NonBlank
    why: Reason
    in_charge: str | None = None
    # The nearest figure the product does report, when there is one (not the target itself).
    related_metric: str | None = None


class Plan(_Data):
    id: Identifier
    version: int = Field(ge=1)
    title: NonBlank  # Vietnamese, as issued
    document: NonBlank  # e.g. "KH 7860/KH-UBND ngày 17/8/2022"
    issued_by: NonBlank
    valid: DateRange
    illustrative: bool = False  # an example for tests and demos, not an issued plan
    notes: str = ""
    targets: tuple[Target, ...] = Field(min_length=1)
    unmeasurable: tuple[Unmeasurable, ...] = ()
    burn_alerts: tuple[BurnAlert, ...] = DEFAULT_BURN_ALERTS

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def target(self, target_id: str) -> Target:
        for target in self.targets:
            if target.id == target_id:
                return target
        raise KeyError(target_id)

    def span(self, target: Target) -> DateRange:
        """The days a target covers: its explicit range, or the plan's validity."""
        return target.period if isinstance(target.period, DateRange) else self.valid
