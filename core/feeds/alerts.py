"""Feed alerts from judgements: pure (judgements and the alerts already open in, transitions
out), the plan alerts' shape (core/plans/alerts.py) in the same `alerts` table.

One alert per (kind, source, agency), whatever the days: `feed/<kind>/<agency>/<source>` (an
agency code has no '/', a source may). It fires once when the latest judged working day is
silent (or has no manifest) and resolves once when a later judged day is normal again, or when
late events or manifests fill the day. While it fires, nothing is sent again, however many
days the silence lasts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from core.feeds.judge import FeedRule, ManifestJudgement, VolumeJudgement
from core.plans.alert_model import State, Transition

Kind = Literal["silent_feed", "missing_manifest"]
KINDS: tuple[Kind, ...] = ("silent_feed", "missing_manifest")


@dataclass(frozen=True)
class OpenFeedAlert:
    """The latest transition of a feed alert, as stored (alerts_current)."""

    alert_id: str
    seq: int
    state: State
    status: str
    kind: str
    source: str
    agency_code: str
    first_day: date  # the first silent day (or day without a manifest) of this episode
    expected: float | None = None  # silent_feed: the volume the silence was judged against

    @classmethod
    def of(cls, t: Transition) -> OpenFeedAlert:
        e = t.evidence
        expected = e.get("expected")
        return cls(
            t.alert_id,
            t.seq,
            t.state,
            t.status,
            t.kind,
            str(e["source"]),
            t.agency_code,
            t.period_start,
            None if expected is None else float(expected),
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> OpenFeedAlert:
        """From (alert_id, last_seq, state, status, kind, agency_code, period_start, evidence)."""
        alert_id, seq, state, status, kind, agency, first_day, evidence = row
        e = json.loads(evidence)
        expected = e.get("expected")
        return cls(
            alert_id,
            int(seq),
            state,
            status,
            kind,
            str(e.get("source", "")),
            agency,
            first_day,
            None if expected is None else float(expected),
        )


def alert_id(kind: str, source: str, agency: str) -> str:
    return f"feed/{kind}/{agency}/{source}"


def transitions(
    volumes: Iterable[VolumeJudgement],
    manifests: Iterable[ManifestJudgement],
    open_alerts: dict[str, OpenFeedAlert],
    now: datetime,
    rule: FeedRule,
) -> list[Transition]:
    out = [t for j in volumes if (t := _volume_transition(j, open_alerts, now, rule))]
    out += [t for j in manifests if (t := _manifest_transition(j, open_alerts, now))]
    return out


def _volume_transition(
    j: VolumeJudgement, open_alerts: dict[str, OpenFeedAlert], now: datetime, rule: FeedRule
) -> Transition | None:
    source, agency = j.feed
    key = alert_id("silent_feed", source, agency)
    current = open_alerts.get(key)
    base = {"source": source, "agency_code": agency, "judged_day": j.day, "ratio": rule.ratio}
    if current is None or current.state != "firing":
        if j.reason != "silent" or j.expected is None:
            return None
        days, volumes = j.silent_days, j.silent_volumes
        status = "silent" if not any(volumes) else "low"
        evidence = {
            **base,
            "days": days,
            "volumes": volumes,
            "expected": j.expected,
            "threshold": round(rule.ratio * j.expected, 3),
            "history_days": j.history_days,
            "min_volume": rule.min_volume,
        }
        text = _silent_text(source, agency, days, volumes, j.expected)
        severity = "critical" if status == "silent" else "warning"
        return _make(
            key, current, "firing", "silent_feed", severity, status, j, text, evidence, now
        )
    # Firing: back once the day judged reaches the share of the volume the silence was judged
    # against (the current history may by now be the silence itself). Without it (a damaged
    # row), against today's expectation; with neither the alert stays as it is.
    expected = current.expected if current.expected is not None else j.expected
    if expected is None or j.volume < rule.ratio * expected:
        return None
    pairs = zip(j.days, j.volumes, strict=True)
    episode = [(d, v) for d, v in pairs if current.first_day <= d < j.day]
    evidence = {
        **base,
        "volume": j.volume,
        "expected": expected,
        "threshold": round(rule.ratio * expected, 3),
        "days": [d for d, _ in episode],
        "volumes": [v for _, v in episode],
    }
    text = (
        f"Đã hết: Nguồn dữ liệu {source} của {agency} đã gửi lại hồ sơ: ngày {_day(j.day)} "
        f"nhận {j.volume} hồ sơ (bình thường khoảng {_number(expected)} hồ sơ mỗi ngày làm việc)."
    )
    return _make(key, current, "resolved", "silent_feed", "info", "normal", j, text, evidence, now)


def _manifest_transition(
    j: ManifestJudgement, open_alerts: dict[str, OpenFeedAlert], now: datetime
) -> Transition | None:
    source, agency = j.feed
    key = alert_id("missing_manifest", source, agency)
    current = open_alerts.get(key)
    firing = current is not None and current.state == "firing"
    base = {"source": source, "agency_code": agency, "judged_day": j.day}
    if not firing and j.missing:
        text = (
            f"Nguồn dữ liệu {source} của {agency} không gửi bảng kê cuối ngày cho "
            f"{_days(j.missing)}."
        )
        evidence = {**base, "days": j.missing}
        return _make(
            key, current, "firing", "missing_manifest", "warning", "missing", j, text, evidence, now
        )
    if not firing or j.missing or current is None:
        return None
    # The day judged has its manifest again; days of the episode still without one are named,
    # so a feed that resumed without sending the days it missed does not look whole.
    still = [d for d in j.without if d >= current.first_day]
    text = f"Đã hết: Nguồn dữ liệu {source} của {agency} đã gửi lại bảng kê cuối ngày"
    text += f" (ngày {_day(j.day)})"
    if still:
        text += f"; còn thiếu bảng kê {_listed(still)}"
    episode = [d for d in j.days if current.first_day <= d < j.day]
    evidence = {**base, "days": episode, "still_missing": still}
    return _make(
        key,
        current,
        "resolved",
        "missing_manifest",
        "info",
        "received",
        j,
        text + ".",
        evidence,
        now,
    )


def _make(
    key: str,
    current: OpenFeedAlert | None,
    state: State,
    kind: Kind,
    severity: str,
    status: str,
    j: VolumeJudgement | ManifestJudgement,
    summary: str,
    evidence: dict[str, Any],
    now: datetime,
) -> Transition:
    days: list[date] = evidence["days"] or [j.day]
    first = min(days) if state == "firing" or current is None else current.first_day
    evidence["window"] = {"from": j.days[0], "to": j.days[-1]}
    evidence["days"] = list(evidence["days"])
    if "volumes" in evidence:
        evidence["volumes"] = list(evidence["volumes"])
    return Transition(
        alert_id=key,
        seq=(current.seq if current else 0) + 1,
        state=state,
        at=now,
        kind=kind,
        severity=severity,
        plan="",
        target_id="",
        agency_code=j.feed[1],
        period_start=first,
        status=status,
        previous_status=current.status if current else "",
        summary=summary,
        evidence=evidence,
    )


def _silent_text(
    source: str, agency: str, days: Sequence[date], volumes: Sequence[int], expected: float
) -> str:
    usual = f"bình thường khoảng {_number(expected)} hồ sơ mỗi ngày làm việc"
    if not any(volumes):
        return f"Nguồn dữ liệu {source} của {agency} không gửi hồ sơ {_days(days)} ({usual})."
    counts = ", ".join(str(v) for v in volumes)
    return (
        f"Nguồn dữ liệu {source} của {agency} gửi rất ít hồ sơ {_days(days)}: {counts} hồ sơ "
        f"({usual})."
    )


def _day(d: date) -> str:
    return f"{d:%d/%m/%Y}"


def _days(days: Sequence[date]) -> str:
    """A run of working days: "ngày 11/03/2026", or "các ngày từ 11/03/2026 đến 13/03/2026 (3
    ngày làm việc)"."""
    if len(days) == 1:
        return f"ngày {_day(days[0])}"
    return f"các ngày từ {_day(days[0])} đến {_day(days[-1])} ({len(days)} ngày làm việc)"


def _listed(days: Sequence[date]) -> str:
    """Days not necessarily in a row: "ngày 11/03/2026", "các ngày 11/03/2026, 13/03/2026"."""
    if len(days) == 1:
        return f"ngày {_day(days[0])}"
    return "các ngày " + ", ".join(_day(d) for d in days)


def _number(x: float) -> str:
    """12.0 → "12", 12.5 → "12,5" (Vietnamese decimal comma)."""
    return f"{x:.1f}".rstrip("0").rstrip(".").replace(".", ",")
