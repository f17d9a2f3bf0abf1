"""The Grafana dashboard JSON model (classic schema), written as plain typed data.

Each panel query declares the columns and ClickHouse types it returns: the tests run every query
against the real engine and compare, so a panel cannot silently lose a column or change its type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DATASOURCE_UID = "clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE: dict[str, str] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
FOLDER_UID = "motcua"
FOLDER_TITLE = "Một cửa điện tử"
SCHEMA_VERSION = 41

PanelKind = Literal["stat", "timeseries", "table", "barchart", "bargauge", "text"]
# The plugin's `format` (grafana/sqlds FormatQueryOption): 0 time series, 1 table.
TIME_SERIES = 0
TABLE = 1
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    """One panel target: raw SQL for the plugin, and the (name, ClickHouse type) columns it
    returns."""

    sql: str
    columns: tuple[tuple[str, str], ...]
    format: int = TABLE

    def target(self, ref_id: str = "A") -> dict[str, Any]:
        return {
            "refId": ref_id,
            "datasource": DATASOURCE,
            "editorType": "sql",
            "format": self.format,
            "queryType": "timeseries" if self.format == TIME_SERIES else "table",
            "rawSql": self.sql,
        }


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelKind
    query: Query | None = None  # None only for text panels
    description: str = ""
    unit: str = ""  # Grafana unit id: percentunit, m, s, short, none
    width: int = 8
    height: int = 8
    decimals: int | None = None
    thresholds: tuple[tuple[float | None, str], ...] = ()  # (from value, colour); None = base
    content: str = ""  # markdown, text panels only
    options: dict[str, Any] = field(default_factory=dict)
    # Column headers in Vietnamese while the SQL keeps English identifiers.
    renames: dict[str, str] = field(default_factory=dict)

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        panel: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
        }
        if self.kind == "text":
            panel["options"] = {"mode": "markdown", "content": self.content}
            return panel
        assert self.query is not None, f"panel {self.title!r} has no query"
        defaults: dict[str, Any] = {}
        if self.unit:
            defaults["unit"] = self.unit
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        if self.thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"value": v, "color": c} for v, c in self.thresholds],
            }
        panel["datasource"] = DATASOURCE
        panel["targets"] = [self.query.target()]
        panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
        panel["options"] = dict(self.options)
        if self.renames:
            names = {c for c, _ in self.query.columns}
            renames = {k: v for k, v in self.renames.items() if k in names}
            panel["transformations"] = [{"id": "organize", "options": {"renameByName": renames}}]
        return panel


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: Query
    multi: bool = True
    include_all: bool = True
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        current: dict[str, Any] = {"text": ["All"], "value": ["$__all"]} if self.include_all else {}
        return {
            "type": "query",
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "datasource": DATASOURCE,
            "query": self.query.sql,
            "definition": self.query.sql,
            "refresh": 2,  # on time range change
            "multi": self.multi,
            "includeAll": self.include_all,
            "current": current,
            "options": [],
            "sort": 1,
            "hide": 0,
        }


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...]
    tags: tuple[str, ...] = ("motcua",)
    time_from: str = "now-1y"
    refresh: str = "5m"

    def queries(self) -> list[tuple[str, Query]]:
        """Every query of the board with a name for reports: panels, then variables."""
        out = [(f"{self.uid}/{p.title}", p.query) for p in self.panels if p.query is not None]
        out += [(f"{self.uid}/${v.name}", v.query) for v in self.variables]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "Asia/Ho_Chi_Minh",
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "templating": {"list": [v.to_json() for v in self.variables]},
            "annotations": {"list": []},
            "links": [
                {"type": "dashboards", "tags": ["motcua"], "asDropdown": True, "title": "Bảng"}
            ],
            "panels": _layout(self.panels),
        }


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, Any]]:
    """Left to right, wrapping at the grid's 24 columns; a row is as tall as its tallest panel."""
    out: list[dict[str, Any]] = []
    x = y = row_height = 0
    for index, panel in enumerate(panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        out.append(panel.to_json(index, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return out
