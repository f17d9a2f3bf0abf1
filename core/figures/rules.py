"""Rule sets: every configurable rule of the metrics reference, as named, versioned data.

Rules change by decree (NĐ 118/2025 replaced parts of NĐ 61/2018 and 107/2021 from 1/7/2025), so
a rule is never a constant in code: figures name the rule set (name@version) that produced them,
and an old figure can be recomputed under the rules it was published with.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# reference@1 stays servable as it was: an answer that cites it is reproduced exactly.
DEFAULT_RULE_SET = "reference@2"


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on_time_boundary: Literal["date", "end_of_due_date"] = Field(
        description="date: on time = same date as due_at and not after it (reference §2); "
        "end_of_due_date: anything finished on the due date is on time"
    )
    multi_supplement_late: bool = Field(description="more than one supplement request ⇒ late")
    withdrawn_counts_as_finished: bool
    apology_days_before_due: int = Field(ge=0)
    apology_day_unit: Literal["working", "calendar"]
    max_reschedules: int = Field(ge=0)
    leading_indicator_working_days: int = Field(ge=1)
    feedback_answer_working_days: int = Field(ge=1)
    feedback_deadline: Literal["working_days", "source_due_at"] = Field(
        description="working_days: N working days from filing (reference §5); source_due_at: "
        "the due_at the source system sent"
    )
    apology_population: Literal["late", "missed_due_date"] = Field(
        description="late: every late dossier is in apology compliance's population; "
        "missed_due_date: only those whose original due date passed before they finished (or "
        "that are open past it), as the apology letter is for a missed date (reference §2): a "
        "dossier late only by the more-than-one-supplement rule is left out. The leading "
        "indicator counts the open dossiers not (yet) in that population"
    )
    score_4_2: Literal["thr80", "lin"]
    rate_unit: Literal["fraction", "percent"] = Field(
        description="a 766 indicator's rate: fraction of 1, or percentage like every other rate "
        "of the service (5/9: 0.56 or 55.56 with 2 decimals)"
    )
    rate_decimals: int = Field(ge=0, le=6, description="decimals of a 766 rate in its unit")
    points_from: Literal["rounded_rate", "exact_rate"] = Field(
        description="rounded_rate: 766 points from the rate as shown (5/9 of 20 = 0.56 × 20 = "
        "11.2) and totals from the points as shown; exact_rate: from numerator / denominator "
        "unrounded (11.11), points and totals rounded only when shown"
    )


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int
    title: str
    description: str
    rules: Rules

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def sql_params(self) -> dict[str, int]:
        """The rules the SQL reads, as query parameters."""
        r = self.rules
        return {
            "multi_supplement_late": int(r.multi_supplement_late),
            "lenient_boundary": int(r.on_time_boundary == "end_of_due_date"),
            "withdrawn_finishes": int(r.withdrawn_counts_as_finished),
            "apology_unit_working": int(r.apology_day_unit == "working"),
            "apology_days_before_due": r.apology_days_before_due,
            "max_reschedules": r.max_reschedules,
            "leading_working_days": r.leading_indicator_working_days,
            "feedback_working_days": r.feedback_answer_working_days,
            "feedback_deadline_source": int(r.feedback_deadline == "source_due_at"),
            "apology_missed_due_only": int(r.apology_population == "missed_due_date"),
        }


class UnknownRuleSet(LookupError):
    pass


@cache
def available() -> dict[str, RuleSet]:
    folder = resources.files("core.figures") / "rulesets"
    sets = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            rule_set = RuleSet.model_validate(json.loads(entry.read_text(encoding="utf-8")))
            if f"{rule_set.id}.json" != entry.name:
                raise ValueError(f"{entry.name} declares {rule_set.id}: name the file after it")
            sets[rule_set.id] = rule_set
    return sets


def get(rule_set_id: str | None = None) -> RuleSet:
    wanted = rule_set_id or DEFAULT_RULE_SET
    try:
        return available()[wanted]
    except KeyError:
        raise UnknownRuleSet(
            f"unknown rule set {wanted!r}; known: {', '.join(sorted(available()))}"
        ) from None
