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
from services.metrics.definitions import Reads
from services.metrics.queries import (
    SINGLE_T,
    Period,
    Read,
    day_count_rows,
    day_split,
    judged_dossiers,
    plain_dossiers,
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

# The report's population: every dossier with a due date received by the judging instant `t` and
# not finished before the period; at `t` each is finished in the period or still open.
_IN_REPORT = "due_at IS NOT NULL AND received_at < t AND (end_at IS NULL OR end_at >= period_start)"

# Columns 4-5 and 8-10 are flows: dossiers received, and dossiers finished, on the period's days.
# The day counts answer them (services/metrics/days.py) like any flow figure, with the facts for
# today's days and for what the refolder has not caught up with. `events` and `population` are
# summed on the received side only, so that with column 6 they cover the report's dossiers once.
_RECEIVED = """
SELECT agency_code,
    sumIf(sign, channel = 'online') AS received_online,
    sumIf(sign, channel != 'online') AS received_direct_postal,
    0 AS carried_over, 0 AS resolved_early, 0 AS resolved_on_time, 0 AS resolved_late,
    0 AS pending_within, 0 AS pending_overdue,
    sum(sign) AS population, {events} AS events, maxIf(last_ingested_at, sign > 0) AS watermark
FROM ({rows})
WHERE due_at IS NOT NULL AND received_at >= period_start AND received_at < t
GROUP BY agency_code
"""

_FINISHED = """
SELECT agency_code, 0 AS received_online, 0 AS received_direct_postal, 0 AS carried_over,
    sumIf(sign, timeliness = 'early') AS resolved_early,
    sumIf(sign, timeliness = 'on_time') AS resolved_on_time,
    sumIf(sign, timeliness = 'late') AS resolved_late,
    0 AS pending_within, 0 AS pending_overdue,
    0 AS population, 0 AS events, maxIf(last_ingested_at, sign > 0) AS watermark
FROM ({rows})
WHERE due_at IS NOT NULL AND end_at >= period_start AND end_at < t
GROUP BY agency_code
"""

# What the flows cannot say, from the facts of the few dossiers it concerns: those carried into
# the period (column 6) and those open at `t` (11-13), both open at an instant; and the dossiers
# whose end comes before their receipt (integrator data; the event contract does not forbid it),
# which a flow counts but the report leaves out: received in the period but finished before it
# (x_received), or finished in it but received after `t` (x_finished).
_BOUNDARY_ROWS = (
    "due_at IS NOT NULL AND ("
    # carried over
    "received_at < {period_start:DT} AND received_at < {judged_at:DT} "
    "AND (end_at IS NULL OR end_at >= {period_start:DT}) "
    # open at t
    "OR received_at < {judged_at:DT} AND (end_at IS NULL OR end_at >= {judged_at:DT}) "
    "AND (end_at IS NULL OR end_at >= {period_start:DT}) "
    # x_received, x_finished
    "OR received_at >= {period_start:DT} AND received_at < {judged_at:DT} "
    "AND end_at < {period_start:DT} "
    "OR end_at >= {period_start:DT} AND end_at < {judged_at:DT} "
    "AND (received_at IS NULL OR received_at >= {judged_at:DT}))"
).replace("DT", "DateTime64(3, 'UTC')")

_BOUNDARY = f"""
SELECT agency_code,
    -sumIf(sign, x_received AND channel = 'online') AS received_online,
    -sumIf(sign, x_received AND channel != 'online') AS received_direct_postal,
    sumIf(sign, carried) AS carried_over,
    -sumIf(sign, x_finished AND timeliness = 'early') AS resolved_early,
    -sumIf(sign, x_finished AND timeliness = 'on_time') AS resolved_on_time,
    -sumIf(sign, x_finished AND timeliness = 'late') AS resolved_late,
    sumIf(sign, open_at_t AND timeliness != 'late') AS pending_within,
    sumIf(sign, open_at_t AND timeliness = 'late') AS pending_overdue,
    sumIf(sign, carried) - sumIf(sign, x_received) AS population,
    sumIf(sign * event_count, carried) - sumIf(sign * event_count, x_received) AS events,
    maxIf(last_ingested_at, sign > 0 AND (carried OR open_at_t)) AS watermark
FROM (
    SELECT *,
        {_IN_REPORT} AND received_at < period_start AS carried,
        {_IN_REPORT} AND NOT finished_by_t AS open_at_t,
        due_at IS NOT NULL AND received_at >= period_start AND received_at < t
            AND end_at < period_start AS x_received,
        due_at IS NOT NULL AND end_at >= period_start AND end_at < t
            AND NOT ifNull(received_at < t, 0) AS x_finished
    FROM ({{rows}})
)
GROUP BY agency_code
"""

_SQL = """
SELECT agency_code, sum(received_online) AS received_online,
    sum(received_direct_postal) AS received_direct_postal, sum(carried_over) AS carried_over,
    sum(resolved_early) AS resolved_early, sum(resolved_on_time) AS resolved_on_time,
    sum(resolved_late) AS resolved_late, sum(pending_within) AS pending_within,
    sum(pending_overdue) AS pending_overdue, sum(events) AS events, max(watermark) AS watermark
FROM ({parts})
GROUP BY agency_code
HAVING sum(population) != 0
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
    read = Read.of(client, as_of)
    t = params["judged_at"]
    parts = [
        *_flow("received", _RECEIVED, period, now, where, params, read),
        *_flow("finished", _FINISHED, period, now, where, params, read),
    ]
    prune = f"{prune_clause('finished_or_open', period.start, period.end, t)} AND {_BOUNDARY_ROWS}"
    boundary = judged_dossiers(where, SINGLE_T, read=read, prune=prune, agencies=where)
    if boundary:
        parts.append(_BOUNDARY.replace("{rows}", boundary))
    sql = _SQL.replace("{parts}", "\nUNION ALL\n".join(parts))
    result = client.query(sql, parameters=params)
    rows, events, watermark = [], 0, None
    for r in result.named_results():
        events += int(r.pop("events"))
        wm = utc(r.pop("watermark"))
        watermark = wm if watermark is None or (wm and wm > watermark) else watermark
        code = str(r.pop("agency_code"))
        rows.append(II06aRow(code, **{k: int(v) for k, v in r.items()}))
    return II06aReport(rows=rows, events=events, watermark=watermark)


def _flow(
    kind: Reads,
    template: str,
    period: Period,
    now: datetime,
    where: str,
    params: dict[str, Any],
    read: Read,
) -> list[str]:
    """The report's sums over the dossiers received (or finished) in the period: whole past days
    from the day counts, the rest from the facts, as a flow figure reads them (MetricQuery.sql);
    the facts alone as of an instant or while the counts are being reconciled."""
    split = None if read.as_of or not read.counts else day_split(kind, period, now, params)
    parts = []
    if split is not None:
        parts.append(
            template.replace("{events}", "sum(events)").replace(
                "{rows}", day_count_rows(kind, where)
            )
        )
    prune = prune_clause(kind, period.start, period.end, params["judged_at"])
    if kind == "finished":  # judged at their end: the template keeps end_at < t only
        rows = judged_dossiers(
            where, SINGLE_T, read=read, prune=prune, agencies=where, split=split, finished=True
        )
    else:
        rows = plain_dossiers(where, SINGLE_T, read=read, prune=prune, agencies=where, split=split)
    if rows:
        events = "sum(sign * event_count)"
        parts.append(template.replace("{events}", events).replace("{rows}", rows))
    return parts


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
