"""What a target's evaluation reads and judges: the agencies it judges on their own (with their
subtrees and ancestors in the org tree), the catalogue's eligible procedures, and the daily series
summed over a unit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures.periods import DailyRow
from core.figures.reads import Read
from core.plans import forecast
from core.plans.model import Target
from core.reference.catalog import Catalog
from core.reference.org_tree import OrgTree


def by_agency(query: Any, client: Client, read: Read | None) -> list[Any]:
    query.group_by = "agency"
    return list(query.run(client, read))


def eligible(client: Client, at: date, metric: str) -> tuple[str, ...]:
    if metric != "full_online_share":
        return ()
    return tuple(p.code for p in Catalog.load(client, at) if p.full_online_eligible)


def subtrees(tree: OrgTree, codes: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for code in codes:
        out |= tree.descendants(code) if code in tree else {code}
    return out


def units(target: Target, tree: OrgTree, requested: set[str]) -> set[str] | None:
    """The agencies judged on their own besides the scope as a whole; None: every agency with
    figures (each_agency with no agencies listed)."""
    quotas = {q.agency for q in target.per_agency}
    if target.applies_to == "scope":
        return quotas
    if requested:
        return requested | quotas
    return None


def with_ancestors(tree: OrgTree, codes: set[str]) -> set[str]:
    out = set(codes)
    for code in codes:
        if code in tree:
            out.update(tree.path(code))
    return out


def series(rows: Iterable[DailyRow]) -> list[forecast.Day]:
    by_day: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        acc = by_day[r.day]
        acc[0] += r.hits
        acc[1] += r.total
        acc[2] += r.pending
    return [forecast.Day(d, h, n, q) for d, (h, n, q) in sorted(by_day.items())]
