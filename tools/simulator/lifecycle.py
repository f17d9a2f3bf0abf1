"""Seeded, pure lifecycles of one dossier or one feedback item, as contract v1 events.

A lifecycle is a function of its RNG, agency, procedure and start time: no clock, no global
randomness, so the same inputs give the same events with the same event_ids.
"""

from __future__ import annotations

import random
import uuid
import zlib
from datetime import datetime, time, timedelta
from typing import Any, cast

from schemas.v1.events import EVENT_TYPES, Channel, Event, Level, Outcome, Rating
from tools.simulator.catalog import AGENCIES, Agency, Procedure, procedures_for
from tools.simulator.workdays import (
    ICT,
    MINUTE,
    add_working_days,
    next_open,
    office_between,
    office_time,
    working_day_deadline,
)

SOURCE = "motcua-khanhhoa"
# Until 1/7/2025 the city and its wards published from their own system; it went with the city.
_DISTRICT_SOURCES = {"NHATRANG": "motcua-nhatrang"}

# Probabilities per dossier unless said otherwise. Online shares are of all the agency's dossiers;
# a district's override also holds for the communes of its area, before and after 1/7/2025.
_ONLINE_BY_LEVEL = {Level.province: 0.44, Level.district: 0.40, Level.commune: 0.37}
_ONLINE_OVERRIDES = {
    "SKHDT": 0.70,
    "STP": 0.55,
    "KHANHVINH": 0.28,
    "KHANHSON": 0.25,
    "TRUONGSA": 0.2,
}
_POSTAL_SHARE = 0.05  # of the dossiers not submitted online
_DIGITIZED_BY_LEVEL = {Level.province: 0.93, Level.district: 0.86, Level.commune: 0.80}
_SUPPLEMENT_SHARE = 0.12
_TWO_SUPPLEMENTS_SHARE = 0.02  # of all dossiers; the portal counts these late whatever the dates
_LATE_SHARE = 0.006
# KH 7860 A.IV.5 singles out land dossiers at Sở TN&MT and the districts: make them visibly slower.
# From 1/7/2025 the districts' land TTHC are the merged communes': they inherit their area's share.
_LAND_LATE_SHARE = {"STNMT": 0.045, "CAMLAM": 0.06, "NHATRANG": 0.035, "DIENKHANH": 0.03}
_LAND_LATE_DEFAULT = 0.015
_APOLOGY_SHARE = 0.70  # of late dossiers
_APOLOGY_IN_TIME_SHARE = 0.75  # of apologies: issued at least a working day before the due date
_WITHDRAWN_SHARE = 0.01
_REJECTED_SHARE = 0.025
_UNCOLLECTED_SHARE = 0.02  # resolved, result never handed over
_RATED_SHARE = 0.2
_FEEDBACK_WORKING_DAYS = 15


def _jitter(code: str, spread: float) -> float:
    # Stable per agency across runs and processes (unlike hash()).
    return (zlib.crc32(code.encode()) % 1001 / 1000 - 0.5) * spread


def _online_given_capable(agency: Agency) -> float:
    """P(online | the TTHC is online-capable), so the agency's overall share hits its target."""
    key = agency.code if agency.code in _ONLINE_OVERRIDES else agency.area
    share = _ONLINE_OVERRIDES.get(key or "", _ONLINE_BY_LEVEL[agency.level])
    share += _jitter(agency.code, 0.08)
    offered = procedures_for(agency)
    total = sum(p.weight for p in offered)
    capable = sum(p.weight for p in offered if p.online) / total if total else 1.0
    return min(0.95, share / capable) if capable else 0.0


# By agency version: a kept code (PHUONG_BANGOI) has another profile in the merged tree.
_ONLINE = {(a.code, a.valid_from): _online_given_capable(a) for a in AGENCIES}


def source_of(agency: Agency) -> str:
    """The system an agency version publishes from (its events and its manifests)."""
    district = agency.code if agency.level is Level.district else agency.parent
    return _DISTRICT_SOURCES.get(district or "", SOURCE)


def _land_late_share(agency: Agency) -> float:
    key = agency.code if agency.code in _LAND_LATE_SHARE else agency.area
    return _LAND_LATE_SHARE.get(key or "", _LAND_LATE_DEFAULT)


def _build(
    rng: random.Random, agency: Agency, plan: list[tuple[datetime, str, dict[str, Any]]]
) -> list[Event]:
    """Contract models for (occurred_at, type, fields), in time order; ties keep plan order."""
    plan.sort(key=lambda step: step[0])
    envelope = {"schema_version": 1, "agency_code": agency.code, "source": source_of(agency)}
    events = []
    for at, type_, fields in plan:
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        # EVENT_TYPES maps a type to its model; the contract's validation checks every field.
        model = EVENT_TYPES[type_]
        kwargs = {**envelope, **fields, "type": type_, "event_id": event_id, "occurred_at": at}
        events.append(cast(Event, model(**kwargs)))
    return events


def _rating(rng: random.Random, unhappy: bool) -> Rating:
    weights = (0.5, 0.25, 0.25) if unhappy else (0.9, 0.07, 0.03)
    return rng.choices((Rating.satisfied, Rating.neutral, Rating.unsatisfied), weights)[0]


def _resolution(rng: random.Random, received: datetime, due: datetime, late_days: int) -> datetime:
    """End of processing on the active clock (supplement pauses excluded)."""
    if late_days:
        return office_time(rng, add_working_days(due, late_days).date())
    due_day = datetime.combine(due.date(), time(), ICT)
    if rng.random() >= 0.2:
        early = office_between(rng, received + 10 * MINUTE, due_day)
        if next_open(early) == early:
            return early
    # On the due date itself, before the promised hour; also when no opening hours are left before.
    return office_between(rng, max(received + 10 * MINUTE, due_day), due)


def dossier_lifecycle(
    rng: random.Random, agency: Agency, procedure: Procedure, received_at: datetime
) -> list[Event]:
    """Every event of one dossier, received first, in occurred_at order."""
    received = received_at.astimezone(ICT)
    ref = {"dossier_id": f"{agency.code}-{received:%y%m%d}-{rng.getrandbits(40):010x}"}
    online = procedure.online and rng.random() < _ONLINE[agency.code, agency.valid_from]
    postal = not online and rng.random() < _POSTAL_SHARE
    channel = Channel.online if online else Channel.postal if postal else Channel.direct
    due = add_working_days(received, procedure.processing_days)
    land = procedure.domain == "dat_dai"
    late_share = _land_late_share(agency) if land else _LATE_SHARE
    late_days = 1 + int(rng.expovariate(1 / (5 if land else 2))) if rng.random() < late_share else 0
    end = _resolution(rng, received, due, late_days)
    fields: dict[str, Any] = {
        "procedure_code": procedure.code,
        "domain_code": procedure.domain,
        "level": agency.level,
        "channel": channel,
        "received_at": received,
        "due_at": due,
        "fee_required": procedure.fee_required,
        "paper_result_required": procedure.paper_result,
    }
    plan: list[tuple[datetime, str, dict[str, Any]]] = [(received, "dossier.received", fields)]
    if rng.random() < _DIGITIZED_BY_LEVEL[agency.level]:
        at = office_between(rng, received + 5 * MINUTE, min(received + timedelta(days=1), end))
        plan.append((at, "dossier.digitized", {}))
    if procedure.fee_required:
        paid_online = rng.random() < (0.75 if online else 0.15)
        at = (
            office_between(rng, received + 10 * MINUTE, end)
            if online or paid_online
            else min(end, received + rng.randint(2, 20) * MINUTE)  # at the desk, on receipt
        )
        amount = procedure.fee_vnd * rng.choice((1, 1, 1, 2, 3))
        pay = {"channel": "online" if paid_online else "offline", "amount_vnd": amount}
        plan.append((at, "dossier.paid", pay))
    if late_days:
        plan.append((due + rng.randint(1, 30) * MINUTE, "dossier.late", {}))
        if rng.random() < _APOLOGY_SHARE:
            in_time = rng.random() < _APOLOGY_IN_TIME_SHARE
            lo = add_working_days(due, -3) if in_time else due
            hi = add_working_days(due, -1) if in_time else end
            at = office_between(rng, max(lo, received + 30 * MINUTE), hi)
            new_due = add_working_days(due, late_days + rng.randint(0, 3))
            plan.append((at, "dossier.apology_issued", {"new_due_at": new_due}))
    requests = 2 if rng.random() < _TWO_SUPPLEMENTS_SHARE / _SUPPLEMENT_SHARE else 1
    if rng.random() < _SUPPLEMENT_SHARE and end - received > 2 * 30 * MINUTE:
        asked = sorted(office_between(rng, received + 30 * MINUTE, end) for _ in range(requests))
        plan += [(at, "dossier.supplement_requested", {}) for at in asked]
    if rng.random() < _WITHDRAWN_SHARE:
        withdrawn = office_between(rng, received + 60 * MINUTE, end)
        plan = [step for step in plan if step[0] < withdrawn]
        plan.append((withdrawn, "dossier.withdrawn", {}))
    else:
        _finish(rng, plan, end, online or not procedure.paper_result, late_days > 0)
    return _build(rng, agency, _pause(rng, plan, ref))


def _finish(
    rng: random.Random,
    plan: list[tuple[datetime, str, dict[str, Any]]],
    end: datetime,
    digital: bool,
    late: bool,
) -> None:
    """Resolution, hand-over and rating. `digital` (submitted online, or no paper result needed)
    makes an electronic result likely and its hand-over immediate."""
    rejected = rng.random() < _REJECTED_SHARE
    e_result = not rejected and rng.random() < (0.8 if digital else 0.4)
    outcome = Outcome.rejected if rejected else Outcome.approved
    plan.append((end, "dossier.resolved", {"outcome": outcome, "e_result": e_result}))
    if rng.random() < _UNCOLLECTED_SHARE:
        return
    wait = 0 if e_result and digital else rng.choice((0, 0, 1, 1, 2, 3, 5, 7))
    returned = (
        end + rng.randint(10, 240) * MINUTE
        if wait == 0
        else office_time(rng, add_working_days(end, wait).date())
    )
    plan.append((returned, "dossier.returned", {}))
    if rng.random() < _RATED_SHARE:
        rated = returned + rng.randint(5, 3 * 24 * 60) * MINUTE
        plan.append((rated, "dossier.rated", {"rating": _rating(rng, late)}))


def _pause(
    rng: random.Random, plan: list[tuple[datetime, str, dict[str, Any]]], ref: dict[str, str]
) -> list[tuple[datetime, str, dict[str, Any]]]:
    """Move the active-clock plan to wall time: each supplement request stops the clock until the
    citizen resubmits, so everything after it shifts by the pause. Adds the dossier reference."""
    shifted: list[tuple[datetime, str, dict[str, Any]]] = []
    delay = timedelta()
    for at, type_, fields in sorted(plan, key=lambda step: step[0]):
        shifted.append((at + delay, type_, fields | ref))
        if type_ == "dossier.supplement_requested":
            # Whole weeks, so every later event keeps its weekday and opening hours.
            delay += timedelta(days=7 * rng.choice((1, 1, 1, 2)), minutes=rng.randint(5, 90))
            shifted.append((at + delay, "dossier.supplement_received", ref))
    return shifted


def feedback_lifecycle(rng: random.Random, agency: Agency, filed_at: datetime) -> list[Event]:
    """Filed, then (mostly) answered, published and sometimes rated; ~6% stay open."""
    filed = filed_at.astimezone(ICT)
    ref = {"feedback_id": f"PAKN-{agency.code}-{filed:%y%m%d}-{rng.getrandbits(40):010x}"}
    topic = "procedure" if rng.random() < 0.8 else "official"
    due = working_day_deadline(filed, _FEEDBACK_WORKING_DAYS)
    fields = ref | {"filed_at": filed, "topic": topic, "due_at": due}
    plan: list[tuple[datetime, str, dict[str, Any]]] = [(filed, "feedback.filed", fields)]
    fate = rng.random()
    if fate >= 0.06:
        late = fate < 0.15
        answered = (
            office_time(rng, add_working_days(due, rng.randint(1, 10)).date())
            if late
            else office_between(rng, filed + timedelta(days=1), due)
        )
        plan.append((answered, "feedback.answered", ref))
        if rng.random() < 0.88:
            days = 2 if rng.random() < 0.85 else rng.randint(3, 8)
            at = office_between(rng, answered + 30 * MINUTE, add_working_days(answered, days))
            plan.append((at, "feedback.published", ref))
        if rng.random() < 0.3:
            rated = answered + rng.randint(60, 5 * 24 * 60) * MINUTE
            plan.append((rated, "feedback.rated", ref | {"rating": _rating(rng, late)}))
    return _build(rng, agency, plan)
