"""Biểu II.06a/VPCP/KSTT (TT 01/2020/TT-VPCP): dossier handling per agency for a period.

Columns and identities follow metrics-reference §3: 3 = 4 + 5 + 6, 7 = 8 + 9 + 10, 11 = 12 + 13,
3 = 7 + 11. Every dossier received in the period or carried into it is, at the period end, either
finished in the period or still open, so the identities hold by construction; a test checks them
on random event streams.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from services.metrics import rules
from services.metrics.queries import (
    SINGLE_T,
    Period,
    Read,
    judged_dossiers,
    prune_clause,
    scope_params,
    utc,
)
from services.metrics.rules import RuleSet
from services.reference.org_tree import OrgTree

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

_SQL = """
SELECT agency_code,
    sumIf(sign, received_at >= period_start AND received_at < period_end
                AND channel = 'online') AS received_online,
    sumIf(sign, received_at >= period_start AND received_at < period_end
                AND channel != 'online') AS received_direct_postal,
    sumIf(sign, received_at < period_start
                AND (end_at IS NULL OR end_at >= period_start)) AS carried_over,
    sumIf(sign, finished AND timeliness = 'early') AS resolved_early,
    sumIf(sign, finished AND timeliness = 'on_time') AS resolved_on_time,
    sumIf(sign, finished AND timeliness = 'late') AS resolved_late,
    sumIf(sign, NOT finished AND timeliness != 'late') AS pending_within,
    sumIf(sign, NOT finished AND timeliness = 'late') AS pending_overdue,
    sum(sign * event_count) AS events,
    maxIf(last_ingested_at, sign > 0) AS watermark
FROM (
    SELECT *, end_at IS NOT NULL AND end_at < t AS finished
    FROM ({judged})
    -- in the report: received by the judging instant and not finished before the period
    WHERE due_at IS NOT NULL AND received_at < t
      AND (end_at IS NULL OR end_at >= period_start)
)
GROUP BY agency_code
HAVING sum(sign) != 0
ORDER BY agency_code
"""


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
) -> II06aReport:
    where, params = scope_params(period, now, agencies, as_of, rule_set or rules.get())
    # every row is finished in the period or open at its end
    prune = prune_clause("finished_or_open", period.start, period.end, params["judged_at"])
    read = Read.of(client, as_of)
    judged = judged_dossiers(where, SINGLE_T, read=read, prune=prune, agencies=where)
    sql = _SQL.replace("{judged}", judged)
    result = client.query(sql, parameters=params)
    rows, events, watermark = [], 0, None
    for r in result.named_results():
        events += int(r.pop("events"))
        wm = utc(r.pop("watermark"))
        watermark = wm if watermark is None or (wm and wm > watermark) else watermark
        code = str(r.pop("agency_code"))
        rows.append(II06aRow(code, **{k: int(v) for k, v in r.items()}))
    return II06aReport(rows=rows, events=events, watermark=watermark)


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
