"""Alerts from target statuses: when a status turns at risk or missed, and while a ceiling target
burns its budget too fast over several windows. Pure: statuses and the alerts already open in,
transitions out; core/plans/monitor.py publishes and stores them.

Each condition has a stable alert_id (plan/target/agency/period/kind): a condition that is already
firing is not fired again; it gets a new transition only when its status changes (at risk →
missed) or when it clears (resolved).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.plans.alert_model import OpenAlert, State, Transition
from core.plans.forecast import STATUS_LABELS
from core.plans.model import BurnAlert
from core.plans.status import SCOPE, TargetStatus

FIRING_STATUSES = {"at_risk": "warning", "missed": "critical"}
CLEARING_STATUSES = {"on_track", "met"}  # insufficient_data neither fires nor clears


def withdrawn(
    open_alerts: dict[str, OpenAlert], in_force: set[tuple[str, str]], now: datetime
) -> list[Transition]:
    """Resolve every firing alert whose (plan, target) is no longer in force: a plan file was
    removed or replaced by another version while the alert fired. Nothing evaluates it any more,
    so without this it would stay firing for ever. An alert of no plan (a silent feed's,
    services/metrics/feeds) is not the plans' to withdraw."""
    out: list[Transition] = []
    for a in open_alerts.values():
        if a.state != "firing" or (a.plan, a.target_id) in in_force or a.period_start is None:
            continue
        if not a.plan:
            continue
        out.append(
            Transition(
                alert_id=a.alert_id,
                seq=a.seq + 1,
                state="resolved",
                at=now,
                kind=a.kind,
                severity="info",
                plan=a.plan,
                target_id=a.target_id,
                agency_code=a.agency_code,
                period_start=a.period_start,
                status="withdrawn",
                previous_status=a.status,
                summary=(
                    f"Đã hết: {a.agency_code or 'Toàn phạm vi'} — {a.target_id}: mục tiêu "
                    f"không còn trong kế hoạch đang áp dụng ({a.plan} đã được gỡ hoặc thay "
                    "bằng phiên bản khác)"
                ),
                evidence={"plan": a.plan, "target": a.target_id, "reason": "plan_withdrawn"},
            )
        )
    return out


def alert_id(s: TargetStatus, kind: str) -> str:
    return f"{s.plan.key}/{s.target.id}/{s.agency or '*'}/{s.period.start.isoformat()}/{kind}"


def transitions(
    statuses: list[TargetStatus], open_alerts: dict[str, OpenAlert], now: datetime
) -> list[Transition]:
    out: list[Transition] = []
    for s in statuses:
        out.extend(_status_transition(s, open_alerts, now))
        if s.target.comparator in ("<", "<="):
            for rule in s.plan.burn_alerts:
                out.extend(_burn_transition(s, rule, open_alerts, now))
    return out


def _status_transition(
    s: TargetStatus, open_alerts: dict[str, OpenAlert], now: datetime
) -> list[Transition]:
    key = alert_id(s, "status")
    current = open_alerts.get(key)
    status = s.evaluation.status
    firing = current is not None and current.state == "firing"
    if status in FIRING_STATUSES:
        if firing and current is not None and current.status == status:
            return []
        state: State = "firing"
        severity = FIRING_STATUSES[status]
    elif status in CLEARING_STATUSES and firing:
        state, severity = "resolved", "info"
    else:
        return []
    previous = current.status if current else ""
    return [_make(s, key, current, state, "status", severity, now, previous, _summary(s, state))]


def _burn_transition(
    s: TargetStatus, rule: BurnAlert, open_alerts: dict[str, OpenAlert], now: datetime
) -> list[Transition]:
    key = alert_id(s, rule.name)
    current = open_alerts.get(key)
    firing = current is not None and current.state == "firing"
    burning = burn_fires(s, rule)
    if burning == firing or (burning is None):
        return []
    state: State = "firing" if burning else "resolved"
    severity = rule.severity if burning else "info"
    burns = {w: s.evaluation.burn_rates.get(f"{w}wd") for w in rule.windows}
    long_w, short_w = rule.windows
    text = (
        f"{_who(s)}: tốc độ tiêu hao ngân sách trễ hạn {_burns(burns)} "
        f"(ngưỡng {_times(rule.factor)}, cửa sổ {long_w} và {short_w} ngày làm việc)"
    )
    if not burning:
        text = f"Đã hết: {text}"
    previous = current.status if current else ""
    return [_make(s, key, current, state, rule.name, severity, now, previous, text, rule)]


def burn_fires(s: TargetStatus, rule: BurnAlert) -> bool | None:
    """True/False, or None when the long window holds too few items to judge (no flapping on a
    handful of dossiers: the state stays as it is)."""
    e = s.evaluation
    if e.status == "insufficient_data" or s.period.end < s.period.start:
        return None
    long_w, short_w = rule.windows
    long_rate = e.burn_rates.get(f"{long_w}wd")
    short_rate = e.burn_rates.get(f"{short_w}wd")
    if long_rate is None or short_rate is None or e.denominator < s.target.min_count:
        return None
    return long_rate >= rule.factor and short_rate >= rule.factor


def _make(
    s: TargetStatus,
    key: str,
    current: OpenAlert | None,
    state: State,
    kind: str,
    severity: str,
    now: datetime,
    previous: str,
    summary: str,
    rule: BurnAlert | None = None,
) -> Transition:
    e, f = s.evaluation, s.evaluation.forecast
    evidence: dict[str, Any] = {
        "plan": s.plan.key,
        "target": s.target.id,
        "clause": s.target.clause,
        "metric": s.target.metric,
        "comparator": s.target.comparator,
        "threshold": s.threshold,
        "agency_code": s.agency,
        "period": {"from": s.period.start, "to": s.period.end},
        "numerator": e.numerator,
        "denominator": e.denominator,
        "pending": e.pending,
        "value": e.value,
        "status": e.status,
        "reason": e.reason,
        "forecast": {
            "value": f.value,
            "low": f.low,
            "high": f.high,
            "probability": f.probability,
            "expected_denominator": f.expected_total,
            "method": f.method,
        },
        "budget": e.budget,
        "needed": e.needed,
        "needed_per_working_day": e.needed_per_working_day,
        "remaining_working_days": e.remaining_working_days,
        "burn_rates": e.burn_rates,
        "data_watermark": s.watermark,
    }
    if rule is not None:
        evidence["rule"] = rule.model_dump()
    return Transition(
        alert_id=key,
        seq=(current.seq if current else 0) + 1,
        state=state,
        at=now,
        kind=kind,
        severity=severity,
        plan=s.plan.key,
        target_id=s.target.id,
        agency_code=s.agency,
        period_start=s.period.start,
        status=e.status,
        previous_status=previous,
        summary=summary,
        evidence=evidence,
        address=scope_subject_code(s),
    )


def _who(s: TargetStatus) -> str:
    return f"{s.agency or 'Toàn phạm vi'} — {s.target.id}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%".replace(".", ",")


def _burns(burns: dict[int, float | None]) -> str:
    return ", ".join(f"{w} ngày LV: {'—' if v is None else _times(v)}" for w, v in burns.items())


def _times(factor: float) -> str:
    """3.1623 → "3,16×" (Vietnamese decimal comma)."""
    return f"{factor:.2f}".rstrip("0").rstrip(".").replace(".", ",") + "×"


def _summary(s: TargetStatus, state: State) -> str:
    e, f = s.evaluation, s.evaluation.forecast
    label = STATUS_LABELS[e.status]
    text = (
        f"{_who(s)}: {label}. Hiện tại {_pct(e.value)} ({e.numerator}/{e.denominator}), "
        f"dự báo cuối kỳ {_pct(f.value)} [{_pct(f.low)}–{_pct(f.high)}], "
        f"chỉ tiêu {s.target.comparator} {_pct(s.threshold)}"
    )
    if e.budget is not None:
        text += f"; còn được phép thêm {e.budget} mục"
    if e.needed is not None:
        text += f"; cần thêm {e.needed} mục"
        if e.needed_per_working_day is not None:
            text += f" ({e.needed_per_working_day:.1f}/ngày làm việc)"
    text += "."
    return text if state == "firing" else f"Đã hết cảnh báo: {text}"


def scope_subject_code(s: TargetStatus) -> str:
    """The agency an alert is addressed to: the unit judged, or for the scope as a whole its one
    listed agency (usually the province)."""
    if s.agency != SCOPE:
        return s.agency
    agencies = s.target.scope.agencies
    return agencies[0] if len(agencies) == 1 else ""
