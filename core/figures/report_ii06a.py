"""Biểu II.06a/VPCP/KSTT (TT 01/2020/TT-VPCP): dossier handling per agency for a period.

Columns and identities follow metrics-reference §3: 3 = 4 + 5 + 6, 7 = 8 + 9 + 10, 11 = 12 + 13,
3 = 7 + 11. Every dossier received in the period or carried into it is, at the period end, either
finished in the period or still open, so the identities hold by construction; a test checks them
on random event streams.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from core.figures import days, rules
from core.figures.dossier_sql import at_t_dossiers, flow_facts, flow_side, judged_dossiers
from core.figures.metric_model import Reads
from core.figures.periods import Period
from core.figures.pruning import day_split, prune_clause
from core.figures.reads import Read, consistently
from core.figures.report_ii06a_sql import AT_T, DAYS, FLOWS
from core.figures.rows import SINGLE_T, named_rows
from core.figures.rules import RuleSet
from core.figures.sql_params import scope_params
from core.reference.org_tree import OrgTree
from core.storage.pool import run_all
from core.zone import utc

# (field, column number, Vietnamese heading) in the form's order.
COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("received_total", 3, "Số hồ sơ tiếp nhận - Tổng số"),
    ("received_online", 4, "Trong kỳ - Trực tuyến"),
    ("received_direct_postal", 5, "Trong kỳ - Trực tiếp, dịch vụ bưu chính"),
    ("carried_over", 6, "Từ kỳ trước chuyển qua"),
    ("resolved_total", 7, "Số hồ sơ đã giải quyết - Tổng số"),
    ("resolved_early", 8, "Trước hạn"),
    ("resolved_on_time", 9, "Đúng hạn"),
    ("resolved_late", 10, "Quá hạn"),
    ("pending_total", 11, "Số hồ sơ đang giải quyết - Tổng số"),
    ("pending_within", 12, "Trong hạn"),
    ("pending_overdue", 13, "Quá hạn"),
)


@dataclass
class II06aRow:
    agency_code: str
    received_online: int = 0
    received_direct_postal: int = 0
    carried_over: int = 0
    resolved_early: int = 0
    resolved_on_time: int = 0
    resolved_late: int = 0
    pending_within: int = 0
    pending_overdue: int = 0

    @property
    def received_total(self) -> int:
        return self.received_online + self.received_direct_postal + self.carried_over

    @property
    def resolved_total(self) -> int:
        return self.resolved_early + self.resolved_on_time + self.resolved_late

    @property
    def pending_total(self) -> int:
        return self.pending_within + self.pending_overdue

    def add(self, other: II06aRow) -> None:
        for f in fields(self):
            if f.name != "agency_code":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"agency_code": self.agency_code}
        out.update({name: getattr(self, name) for name, _, _ in COLUMNS})
        return out


@dataclass
class II06aReport:
    rows: list[II06aRow]
    events: int
    watermark: datetime | None


def compute(
    client: Client,
    period: Period,
    now: datetime,
    agencies: tuple[str, ...] = (),
    as_of: datetime | None = None,
    rule_set: RuleSet | None = None,
    *,
    read: Read | None = None,
) -> II06aReport:
    """The report's rows; `read`: how the store stands when the caller has read it (Read.of)."""

    def ask(read: Read) -> II06aReport:
        where, params = scope_params(period, now, agencies, as_of, rule_set or rules.get())
        t = params["judged_at"]
        kinds: tuple[Reads, ...] = ("received", "finished")
        prunes = {k: prune_clause(k, period.start, period.end, t) for k in kinds}
        # day_split depends on the period and `now` alone: both flows have one or neither does
        splits = {k: day_split(k, period, now, params) for k in kinds}
        split = splits["finished"]
        if not read.as_of and read.counts and split is not None and all(splits.values()):
            # the day counts' whole past days, and the facts since the cut beside them
            parts = [
                DAYS.replace("{days.LATE}", days.LATE)
                .replace("{window}", days.window(where))
                .replace("{days_table}", days.source(split.months, split.edges)),
            ]
            flows = flow_facts(
                {k: s for k, s in splits.items() if s}, where, read=read, prunes=prunes
            )
            sides = {k: flow_side(k) for k in kinds}
        else:  # as of an instant, or the counts being reconciled: the flows from the facts alone
            either = " OR ".join(f"({c})" for c in prunes.values())
            # judged at their end: a received row's judgment is never read
            flows = judged_dossiers(
                where, SINGLE_T, read=read, prune=either, agencies=where, finished=True
            )
            parts, sides = [], dict.fromkeys(kinds, "1")
        if flows:
            flow_sums = FLOWS
            for kind, condition in sides.items():
                flow_sums = flow_sums.replace(f"{{{kind}_side}}", condition)
            parts.append(flow_sums.replace("{rows}", flows))
        open_prune = prune_clause("open", period.start, period.end, t)
        at_t = at_t_dossiers(
            where, read=read, prune=open_prune, agencies=where, received_after=True
        )
        if at_t:
            parts.append(AT_T.replace("{rows}", at_t))
        # independent reads: side by side when the client is a pool (core/storage/pool.py)
        results = run_all(
            client, [functools.partial(named_rows, client, part, params) for part in parts]
        )
        sums: dict[str, Counter[str]] = defaultdict(Counter)
        events, watermark = 0, None
        for part_rows in results:
            for r in part_rows:
                events += int(r.pop("events"))
                wm = utc(r.pop("watermark"))
                watermark = wm if watermark is None or (wm and wm > watermark) else watermark
                sums[str(r.pop("agency_code"))].update({k: int(v) for k, v in r.items()})
        rows = []
        for code in sorted(sums):
            n = sums[code]
            if n["settled"] == 0:  # nothing of this agency's in the report
                continue
            # identity 3 = 7 + 11: what was settled less what was received in the period
            counted = {f.name: n[f.name] for f in fields(II06aRow)[1:] if f.name != "carried_over"}
            rows.append(II06aRow(code, **counted, carried_over=n["settled"] - n["received_n"]))
        return II06aReport(rows=rows, events=events, watermark=watermark)

    return consistently(client, as_of, read, ask)


@dataclass
class TreeRow:
    """A node of the org tree in the report: its own dossiers and its subtree's total."""

    agency_code: str
    name: str
    level: str
    parent_code: str | None
    depth: int
    own: II06aRow
    total: II06aRow

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.total.as_dict(),
            "name": self.name,
            "level": self.level,
            "parent_code": self.parent_code,
            "depth": self.depth,
            "own": self.own.as_dict(),
        }


def roll_up(rows: list[II06aRow], tree: OrgTree, roots: tuple[str, ...] = ()) -> list[TreeRow]:
    """Rows for every agency with dossiers and every ancestor of one, depth first; a parent's
    total is its own row plus its children's totals. `roots` limits the ancestors shown to the
    requested subtrees; an agency unknown to the tree stands alone at the top."""
    nodes: dict[str, TreeRow] = {}

    def node(code: str, parent: str | None, depth: int) -> TreeRow:
        if code not in nodes:
            known = code in tree
            nodes[code] = TreeRow(
                agency_code=code,
                name=tree.name(code) if known else code,
                level=tree.level(code) if known else "",
                parent_code=parent,
                depth=depth,
                own=II06aRow(agency_code=code),
                total=II06aRow(agency_code=code),
            )
        return nodes[code]

    for row in rows:
        path = tree.path(row.agency_code) if row.agency_code in tree else [row.agency_code]
        if roots:
            starts = [i for i, code in enumerate(path) if code in roots]
            path = path[starts[0] :] if starts else [row.agency_code]
        parent: str | None = None
        for depth, code in enumerate(path):
            node(code, parent, depth).total.add(row)
            parent = code
        nodes[path[-1]].own.add(row)
    ordered: list[TreeRow] = []

    def visit(code: str) -> None:
        ordered.append(nodes[code])
        for child in sorted(c for c, n in nodes.items() if n.parent_code == code):
            visit(child)

    for top in sorted(c for c, n in nodes.items() if n.parent_code is None):
        visit(top)
    return ordered
