"""An alert's shape: a transition (fired or resolved) as published and stored in `alerts`, and
the alert it leaves open (alerts_current). core/plans/alerts.py makes them from target statuses;
core/feeds/alerts.py makes the silent feeds' in the same shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from schemas.subjects import alert_subject

State = Literal["firing", "resolved"]


ALERT_COLUMNS = (
    "alert_id",
    "seq",
    "state",
    "at",
    "kind",
    "severity",
    "plan",
    "target_id",
    "agency_code",
    "period_start",
    "status",
    "previous_status",
    "summary",
    "evidence",
)


@dataclass(frozen=True)
class OpenAlert:
    """The latest transition of an alert, as stored (alerts_current)."""

    alert_id: str
    seq: int
    state: State
    status: str
    plan: str = ""
    target_id: str = ""
    agency_code: str = ""
    period_start: date | None = None
    kind: str = ""


@dataclass(frozen=True)
class Transition:
    alert_id: str
    seq: int
    state: State
    at: datetime
    kind: str
    severity: str
    plan: str
    target_id: str
    agency_code: str
    period_start: date
    status: str
    previous_status: str
    summary: str
    evidence: dict[str, Any]
    address: str = ""  # the agency code the subject names (the province for a scope-wide row)

    @property
    def subject(self) -> str:
        return alert_subject(self.address or self.agency_code)

    @property
    def msg_id(self) -> str:
        return f"{self.alert_id}#{self.seq}"

    def as_open(self) -> OpenAlert:
        """What this transition leaves the alert as (the row alerts_current will show)."""
        return OpenAlert(
            self.alert_id,
            self.seq,
            self.state,
            self.status,
            self.plan,
            self.target_id,
            self.agency_code,
            self.period_start,
            self.kind,
        )

    def row(self) -> list[Any]:
        return [
            self.alert_id,
            self.seq,
            self.state,
            self.at,
            self.kind,
            self.severity,
            self.plan,
            self.target_id,
            self.agency_code,
            self.period_start,
            self.status,
            self.previous_status,
            self.summary,
            json.dumps(self.evidence, ensure_ascii=False, sort_keys=True, default=str),
        ]

    def message(self) -> bytes:
        body = dict(zip(ALERT_COLUMNS, self.row(), strict=True))
        body["evidence"] = self.evidence
        return json.dumps(body, ensure_ascii=False, default=str).encode()
