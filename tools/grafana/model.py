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
# The figures come from motcua's own API (the same code and read model as GET /v1/metrics),
# through Grafana's Infinity datasource: a board can never show another number than the API.
API_DATASOURCE_UID = "motcua-api"
API_DATASOURCE_TYPE = "yesoreyeram-infinity-datasource"
API_DATASOURCE: dict[str, str] = {"type": API_DATASOURCE_TYPE, "uid": API_DATASOURCE_UID}
FOLDER_UID = "motcua"
FOLDER_TITLE = "Một cửa điện tử"
SCHEMA_VERSION = 41

PanelKind = Literal["stat", "timeseries", "table", "barchart", "bargauge", "text"]
# The plugin's `format` (grafana/sqlds FormatQueryOption): 0 time series, 1 table.
TIME_SERIES = 0
TABLE = 1
GRID_WIDTH = 24
# What a figure panel shows when the API has nothing to count (never 0 or points).
NO_DATA = "Chưa có số liệu"


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


# "day": a YYYY-MM-DD day of the API, a time column to Grafana
ColumnKind = Literal["string", "number", "timestamp", "day"]


@dataclass(frozen=True)
class ApiQuery:
    """One panel target read from the API by the Infinity datasource: GET `path` with `params`
    (values may hold Grafana variables, expanded by Grafana), the rows at `root` (a dotted path,
    JSONata as the backend parser reads it), and (selector, name, kind) columns of each row."""

    path: str
    params: tuple[tuple[str, str], ...]
    root: str
    columns: tuple[tuple[str, str, ColumnKind], ...]

    def target(self, ref_id: str = "A") -> dict[str, Any]:
        columns: list[dict[str, str]] = []
        for selector, name, kind in self.columns:
            column = {"selector": selector, "text": name, "type": kind}
            if kind == "day":  # the API's days, in the backend parser's Go layout
                column.update(type="timestamp", timestampFormat="2006-01-02")
            columns.append(column)
        return {
            "refId": ref_id,
            "datasource": API_DATASOURCE,
            "type": "json",
            "source": "url",
            "parser": "backend",
            "format": "table",
            "url": "${api_url}" + self.path,
            "url_options": {
                "method": "GET",
                "params": [{"key": k, "value": v} for k, v in self.params],
            },
            "root_selector": self.root,
            "columns": columns,
        }


@dataclass(frozen=True)
class Panel:
    title: str
    kind: PanelKind
    query: Query | ApiQuery | None = None  # None only for text panels
    # more targets beside `query` (refId B, C, …), from the API: a series or column each
    more: tuple[ApiQuery, ...] = ()
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
    # Field overrides (fieldConfig.overrides): one column's own unit, thresholds or cell colour.
    overrides: tuple[dict[str, Any], ...] = ()

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
        queries = (self.query, *self.more)
        panel["datasource"] = API_DATASOURCE if isinstance(self.query, ApiQuery) else DATASOURCE
        panel["targets"] = [q.target(chr(ord("A") + i)) for i, q in enumerate(queries)]
        if isinstance(self.query, ApiQuery):
            defaults["noValue"] = NO_DATA
        panel["fieldConfig"] = {"defaults": defaults, "overrides": list(self.overrides)}
        panel["options"] = dict(self.options)
        transformations: list[dict[str, Any]] = []
        if self.more and self.kind == "table":
            # one frame per target, joined on the first column (the agency)
            first = self.query.columns[0]
            key = first[1] if isinstance(self.query, ApiQuery) else first[0]
            transformations.append(
                {"id": "joinByField", "options": {"byField": key, "mode": "outer"}}
            )
        if self.renames:
            names = {c[1] if isinstance(q, ApiQuery) else c[0] for q in queries for c in q.columns}
            renames = {k: v for k, v in self.renames.items() if k in names}
            transformations.append({"id": "organize", "options": {"renameByName": renames}})
        if transformations:
            panel["transformations"] = transformations
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
class Constant:
    """A hidden dashboard constant (the API's address): set when the boards are exported or
    synced, never chosen by a viewer."""

    name: str
    value: str
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "constant",
            "name": self.name,
            "label": self.name,
            "description": self.description,
            "query": self.value,
            "current": {"text": self.value, "value": self.value},
            "options": [{"text": self.value, "value": self.value, "selected": True}],
            "hide": 2,
        }


@dataclass(frozen=True)
class Choice:
    """A fixed list of (value, text) options, the first one selected."""

    name: str
    label: str
    options: tuple[tuple[str, str], ...]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        value, text = self.options[0]
        return {
            "type": "custom",
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "query": ",".join(f"{t} : {v}" for v, t in self.options),
            "current": {"text": text, "value": value},
            "options": [
                {"text": t, "value": v, "selected": i == 0} for i, (v, t) in enumerate(self.options)
            ],
            "multi": False,
            "includeAll": False,
            "hide": 0,
        }


DashboardVariable = Variable | Constant | Choice


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[DashboardVariable, ...]
    tags: tuple[str, ...] = ("motcua",)
    time_from: str = "now-1y"
    refresh: str = "5m"

    def queries(self) -> list[tuple[str, Query]]:
        """Every SQL query of the board with a name for reports: panels, then variables."""
        panels, variables = self.panels, self.variables
        out = [(f"{self.uid}/{p.title}", p.query) for p in panels if isinstance(p.query, Query)]
        out += [(f"{self.uid}/${v.name}", v.query) for v in variables if isinstance(v, Variable)]
        return out

    def api_queries(self) -> list[tuple[str, ApiQuery]]:
        """Every target read from the API, with a name for reports."""
        return [
            (f"{self.uid}/{p.title}/{chr(ord('A') + i)}", q)
            for p in self.panels
            if isinstance(p.query, ApiQuery)
            for i, q in enumerate((p.query, *p.more))
        ]

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
