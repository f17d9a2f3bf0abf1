"""The checks of a plan that need the metric catalogue, the reference data or several targets at
once. Pure: a parsed plan and a way to find a path's line in, a list of (line, message) out; the
loader turns the first into a PlanError."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from importlib import resources
from typing import Any

from core.figures.definitions import METRICS
from core.figures.index766_scores import INDICATORS
from core.plans.model import INDEX766_PREFIX, DateRange, Plan, Scope, Target

YamlPath = tuple[str | int, ...]  # keys and item indexes from the document's root
LineOf = Callable[[YamlPath], int]
Problem = tuple[int, str]  # (line, message)

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")  # what an agency code looks like, unlike a name


@dataclass(frozen=True)
class AgencySpan:
    parent: str | None
    level: str
    valid_from: date
    valid_to: date | None  # exclusive

    def during(self, span: DateRange) -> bool:
        return self.valid_from <= span.end and (self.valid_to is None or self.valid_to > span.start)


@dataclass(frozen=True)
class Reference:
    """What a plan's scope may name: agency codes (every version of each), domains, levels."""

    agencies: Mapping[str, tuple[AgencySpan, ...]]
    domains: frozenset[str]
    levels: frozenset[str] = frozenset({"province", "district", "commune"})

    @classmethod
    def from_catalog(cls, data: Mapping[str, Any]) -> Reference:
        """From a catalogue file's content ({"agencies": [...], "procedures": [...]}), the format
        of `motcua catalog load`."""
        agencies: dict[str, list[AgencySpan]] = {}
        for a in data.get("agencies", []):
            to = a.get("valid_to")
            agencies.setdefault(a["agency_code"], []).append(
                AgencySpan(
                    a.get("parent_code"),
                    a["level"],
                    date.fromisoformat(a["valid_from"]),
                    date.fromisoformat(to) if to else None,
                )
            )
        domains = frozenset(p["domain_code"] for p in data.get("procedures", []))
        return cls({k: tuple(v) for k, v in agencies.items()}, domains)

    @classmethod
    def seed(cls) -> Reference:
        """The shipped sample (core/reference/data/khanhhoa.json)."""
        source = resources.files("core.reference") / "data" / "khanhhoa.json"
        return cls.from_catalog(json.loads(source.read_text(encoding="utf-8")))

    @cached_property
    def _children(self) -> dict[str, set[str]]:
        children: dict[str, set[str]] = {}
        for code, spans in self.agencies.items():
            for span in spans:
                if span.parent is not None:
                    children.setdefault(span.parent, set()).add(code)
        return children

    def subtree(self, codes: Iterable[str]) -> set[str]:
        """The agencies and everything ever under them (any version of the tree)."""
        found: set[str] = set()
        stack = list(codes)
        while stack:
            code = stack.pop()
            if code not in found:
                found.add(code)
                stack.extend(self._children.get(code, ()))
        return found


def suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class _MetricKind:
    entity: str  # dossier | feedback | index766
    ratio: bool


def _metric_kind(metric: str) -> _MetricKind | str:
    """What the metric is, or why it cannot be a target."""
    if metric.startswith(INDEX766_PREFIX):
        wanted = metric.removeprefix(INDEX766_PREFIX)
        indicators = {i.id: i for i in INDICATORS}
        if wanted not in indicators:
            return f"unknown QĐ 766 indicator '{wanted}'{suggest(wanted, indicators)}"
        if indicators[wanted].missing_reason:
            return (
                f"QĐ 766 indicator {wanted} cannot be computed: {indicators[wanted].missing_reason}"
            )
        return _MetricKind("index766", True)
    if metric not in METRICS:
        known = [*METRICS, *(INDEX766_PREFIX + i.id for i in INDICATORS)]
        return f"unknown metric '{metric}'{suggest(metric, known)}"
    found = METRICS[metric]
    return _MetricKind(found.entity, found.unit == "ratio")


def check(plan: Plan, reference: Reference, line_of: LineOf) -> list[Problem]:
    """Every problem of the plan, in no particular order (the caller reports the first line)."""
    checker = _Checker(plan, reference, line_of)
    checker.ids()
    for i, target in enumerate(plan.targets):
        checker.target(("targets", i), target)
    for i, item in enumerate(plan.unmeasurable):
        who = f"unmeasurable '{item.id}'"
        if item.related_metric is not None:
            kind = _metric_kind(item.related_metric)
            if isinstance(kind, str):
                checker.fail(("unmeasurable", i, "related_metric"), f"{who}: {kind}")
        if item.in_charge is not None:
            checker.agency_name(("unmeasurable", i, "in_charge"), who, item.in_charge)
    checker.overlaps()
    return checker.problems


class _Checker:
    def __init__(self, plan: Plan, ref: Reference, line_of: LineOf) -> None:
        self.plan, self.ref, self.line_of = plan, ref, line_of
        self.problems: list[Problem] = []

    def fail(self, path: YamlPath, message: str) -> None:
        self.problems.append((self.line_of(path), message))

    def ids(self) -> None:
        """Target and unmeasurable ids share one namespace: a status names exactly one."""
        seen: dict[str, int] = {}
        entries = [("targets", i, t.id) for i, t in enumerate(self.plan.targets)]
        entries += [("unmeasurable", i, u.id) for i, u in enumerate(self.plan.unmeasurable)]
        for section, i, entry_id in entries:
            path: YamlPath = (section, i, "id")
            if entry_id in seen:
                self.fail(path, f"duplicate id '{entry_id}' (first on line {seen[entry_id]})")
            seen.setdefault(entry_id, self.line_of(path))

    def target(self, base: YamlPath, t: Target) -> None:
        who = f"target '{t.id}'"
        span, valid = self.plan.span(t), self.plan.valid
        if not valid.contains(span):
            self.fail(
                (*base, "period"),
                f"{who}: period {span.start} → {span.end} is outside the plan's validity "
                f"{valid.start} → {valid.end}",
            )
        kind = _metric_kind(t.metric)
        if isinstance(kind, str):
            self.fail((*base, "metric"), f"{who}: {kind}")
        else:
            self.scope_fits_metric(base, who, t.scope, kind)
            self.threshold((*base, "threshold"), who, t.comparator, t.threshold, kind)
            for j, quota in enumerate(t.per_agency):
                path = (*base, "per_agency", j, "threshold")
                self.threshold(path, who, t.comparator, quota.threshold, kind)
        self.scope(base, who, t.scope, span)
        self.per_agency(base, who, t, span)
        self.agency_name((*base, "in_charge"), who, t.in_charge)
        for j, name in enumerate(t.coordinating):
            self.agency_name((*base, "coordinating", j), who, name)

    def scope_fits_metric(self, base: YamlPath, who: str, scope: Scope, kind: _MetricKind) -> None:
        if kind.entity == "dossier":
            return
        what = "feedback has" if kind.entity == "feedback" else "QĐ 766 indicators have"
        for name in ("domains", "levels"):
            if getattr(scope, name):
                self.fail(
                    (*base, "scope", name),
                    f"{who}: {what} no {name[:-1]}; scope this target by agencies only",
                )

    def threshold(
        self, path: YamlPath, who: str, comparator: str, value: float, kind: _MetricKind
    ) -> None:
        if kind.ratio and not 0 <= value <= 1:
            self.fail(
                path,
                f"{who}: threshold {value} is out of range: a rate is a ratio in 0–1 "
                "(write 30% as 0.3)",
            )
        elif value < 0:
            self.fail(path, f"{who}: threshold {value} is negative")
        elif (comparator == ">" and kind.ratio and value >= 1) or (
            comparator == "<" and value <= 0
        ):
            self.fail(path, f"{who}: '{comparator} {value}' can never be met")

    def scope(self, base: YamlPath, who: str, scope: Scope, span: DateRange) -> None:
        for j, code in enumerate(scope.agencies):
            self.agency((*base, "scope", "agencies", j), who, code, span)
        for j, domain in enumerate(scope.domains):
            if domain not in self.ref.domains:
                self.fail(
                    (*base, "scope", "domains", j),
                    f"{who}: unknown domain '{domain}'{suggest(domain, self.ref.domains)}",
                )
        known_levels = ", ".join(sorted(self.ref.levels))
        for j, level in enumerate(scope.levels):
            if level not in self.ref.levels:
                self.fail(
                    (*base, "scope", "levels", j),
                    f"{who}: unknown level '{level}' (known: {known_levels})",
                )

    def agency(self, path: YamlPath, who: str, code: str, span: DateRange) -> bool:
        """A known agency that exists at some time during `span` (a district code in a plan for
        2026 is refused: districts were abolished on 1/7/2025)."""
        spans = self.ref.agencies.get(code)
        if spans is None:
            self.fail(path, f"{who}: unknown agency '{code}'{suggest(code, self.ref.agencies)}")
            return False
        if not any(s.during(span) for s in spans):
            lives = ", ".join(f"{s.valid_from} → {s.valid_to or '…'}" for s in spans)
            self.fail(
                path,
                f"{who}: agency '{code}' does not exist between {span.start} and {span.end} "
                f"(valid {lives})",
            )
            return False
        return True

    def per_agency(self, base: YamlPath, who: str, t: Target, span: DateRange) -> None:
        in_scope = self.ref.subtree(t.scope.agencies) if t.scope.agencies else None
        seen: set[str] = set()
        for j, quota in enumerate(t.per_agency):
            path = (*base, "per_agency", j, "agency")
            if quota.agency in seen:
                self.fail(path, f"{who}: agency '{quota.agency}' has two quotas")
            seen.add(quota.agency)
            known = self.agency(path, who, quota.agency, span)
            if known and in_scope is not None and quota.agency not in in_scope:
                self.fail(
                    path,
                    f"{who}: agency '{quota.agency}' has a quota but is outside the target's scope",
                )

    def agency_name(self, path: YamlPath, who: str, name: str) -> None:
        """A code-shaped name must be a known agency; anything else is a name as the plan
        writes it (e.g. "Văn phòng UBND tỉnh", absent from the sample reference data)."""
        if _CODE.match(name) and name not in self.ref.agencies:
            self.fail(path, f"{who}: unknown agency '{name}'{suggest(name, self.ref.agencies)}")

    def overlaps(self) -> None:
        """Same metric, same scope and overlapping days: two statuses that could contradict."""
        earlier: dict[tuple[Any, ...], list[tuple[int, Target]]] = {}
        for i, t in enumerate(self.plan.targets):
            key = (t.metric, t.scope.key())
            for j, other in earlier.get(key, []):
                if self.plan.span(other).overlaps(self.plan.span(t)):
                    self.fail(
                        ("targets", i),
                        f"target '{t.id}' overlaps target '{other.id}' (line "
                        f"{self.line_of(('targets', j))}): same metric '{t.metric}', same scope "
                        "and overlapping periods; merge them or give them disjoint periods",
                    )
            earlier.setdefault(key, []).append((i, t))
