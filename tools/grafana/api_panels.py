"""Figure panels read from the API (GET /v1/metrics/{metric}, GET /v1/index766).

A board used to recompute figures in SQL over the metrics service's snapshots, which held only
the current month and year, each agency's own dossiers, and days cut in UTC: it agreed with the
API only for the year to date of every agency together. Now every figure on a board is the API's
answer to the same question, asked through Grafana's Infinity datasource:
- the dashboard's time range as Grafana's `${__from}`/`${__to}` (Unix milliseconds); the API
  counts the Asia/Ho_Chi_Minh days the range touches (routes/metrics.range_days);
- `${agency}`, one node of the org tree (the province by default), with `${scope}`: the node and
  everything under it in the tree valid at the period's end, or the node alone;
- nothing to count is no data ("Chưa có số liệu"), never 0.
Labels, units and descriptions come from the metric catalogue, as on the API and the page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from core.figures.definitions import METRICS
from tools.grafana.model import ApiQuery, ColumnKind, Panel

# Every figure question a board asks: its range, its agency and whether the agency's subtree
# counts (Grafana expands the variables before the datasource sends the request).
SCOPE_PARAMS: tuple[tuple[str, str], ...] = (
    ("from_ms", "${__from}"),
    ("to_ms", "${__to}"),
    ("agency", "${agency}"),
    ("rollup", "${scope}"),
)
SOURCE = (
    " Nguồn: API motcua (GET /v1/metrics), cùng số liệu và định nghĩa với API và trang công khai; "
    "khoảng thời gian tính theo ngày Việt Nam (mọi ngày mà khoảng đã chọn chạm tới)."
)


# The API marks a figure incomplete below MOTCUA_COMPLETENESS_THRESHOLD (services/api/settings.py);
# the boards colour the same share against the same value, read when they are exported or
# synced, as the API's address is (variables.API_URL).
THRESHOLD_VARIABLE = "MOTCUA_COMPLETENESS_THRESHOLD"
DEFAULT_THRESHOLD = 0.99


def completeness_threshold() -> float:
    value = float(os.environ.get(THRESHOLD_VARIABLE, DEFAULT_THRESHOLD))
    if not 0 < value <= 1:
        raise ValueError(f"{THRESHOLD_VARIABLE} must lie in (0, 1], not {value}")
    return value


def share_thresholds() -> tuple[tuple[float | None, str], ...]:
    """Red below the threshold (incomplete), green from it."""
    return ((None, "red"), (completeness_threshold(), "green"))


def share_override(name: str) -> dict[str, Any]:
    """One column of a table: a share of the source's dossiers held, its cell coloured by the
    threshold."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [
            {"id": "unit", "value": "percentunit"},
            {"id": "decimals", "value": 2},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            {
                "id": "thresholds",
                "value": {
                    "mode": "absolute",
                    "steps": [{"value": v, "color": c} for v, c in share_thresholds()],
                },
            },
        ],
    }


COMPLETENESS_DESCRIPTION = (
    "Tỷ lệ hồ sơ mà hệ thống nguồn báo trong bảng kê cuối ngày (các ngày đã qua có bảng kê) "
    "và motcua đã nhận, cùng phạm vi và khoảng thời gian với số liệu. Màu đỏ: dưới ngưỡng "
    "(MOTCUA_COMPLETENESS_THRESHOLD), số liệu chỉ tính trên phần đã nhận nên chưa đầy đủ. "
    "Trống: chưa có bảng kê nào, chưa biết."
)


def unit(metric_id: str) -> str:
    return "m" if METRICS[metric_id].unit == "minutes" else "percentunit"


def decimals(metric_id: str) -> int:
    """A rate is a percentage with 2 decimals everywhere (55.56 %, as the 766 index and the
    public page write it: reference §4); minutes with 1."""
    return 2 if unit(metric_id) == "percentunit" else 1


def describe(metric_id: str) -> str:
    m = METRICS[metric_id]
    target = f" Mục tiêu: {m.target}." if m.target else ""
    return f"{m.description}{target}{SOURCE}"


def figure(metric_id: str, value: str = "rate", group_by: str | None = None) -> ApiQuery:
    """One metric for the board's scope and range: its groups' `value` (rate or a count)."""
    params = SCOPE_PARAMS if group_by is None else (*SCOPE_PARAMS, ("group_by", group_by))
    key: tuple[tuple[str, str, ColumnKind], ...] = ()
    if group_by == "month":
        key = (("group", "time", "day"),)
    elif group_by == "agency":
        key = (("group", "agency_code", "string"),)
    name = "value" if group_by is None else metric_id
    return ApiQuery(f"/v1/metrics/{metric_id}", params, "groups", (*key, (value, name, "number")))


def metric_stat(metric_id: str, *, width: int = 4) -> Panel:
    """The figure for the board's scope and range."""
    return Panel(
        METRICS[metric_id].label,
        "stat",
        figure(metric_id),
        description=describe(metric_id),
        unit=unit(metric_id),
        width=width,
        height=5,
        decimals=decimals(metric_id),
    )


def metric_count_stat(metric_id: str, title: str, *, width: int = 4) -> Panel:
    """The numerator alone (e.g. dossiers due soon without an apology: a to-do count)."""
    return Panel(
        title,
        "stat",
        figure(metric_id, "numerator"),
        description=describe(metric_id),
        unit="short",
        width=width,
        height=5,
    )


def monthly_trend(metric_ids: Sequence[str], title: str, *, width: int = 12) -> Panel:
    """Each month's figure within the range (a month cut by the range counts its days in it),
    one series per metric."""
    first, *rest = (figure(m, group_by="month") for m in metric_ids)
    return Panel(
        title,
        "timeseries",
        first,
        more=tuple(rest),
        description="Số liệu từng tháng trong khoảng đã chọn, của cơ quan đã chọn (và các đơn vị "
        f"trực thuộc, theo Phạm vi).{SOURCE}",
        unit=unit(metric_ids[0]),
        width=width,
        height=9,
        options={"legend": {"displayMode": "table", "placement": "bottom"}},
        renames={m: METRICS[m].label for m in metric_ids},
    )


SOURCE_SHARE = "source_share"


def by_agency(metric_ids: Sequence[str], title: str, *, width: int = 24) -> Panel:
    """One row per agency of the scope (its own dossiers), one column per metric, and how
    complete each agency's population is (the first answer's per-group completeness)."""
    first, *rest = (figure(m, group_by="agency") for m in metric_ids)
    share: tuple[str, str, ColumnKind] = ("completeness.share", SOURCE_SHARE, "number")
    first = ApiQuery(first.path, first.params, first.root, (*first.columns, share))
    return Panel(
        title,
        "table",
        first,
        more=tuple(rest),
        description="Mỗi dòng là hồ sơ của chính một cơ quan trong phạm vi đã chọn, trong khoảng "
        f"thời gian đã chọn.{SOURCE} Cột cuối: {COMPLETENESS_DESCRIPTION}",
        unit=unit(metric_ids[0]),
        width=width,
        height=10,
        decimals=decimals(metric_ids[0]),
        renames={
            "agency_code": "Mã cơ quan",
            **{m: METRICS[m].label for m in metric_ids},
            SOURCE_SHARE: "Đã nhận / nguồn báo",
        },
        overrides=(share_override(SOURCE_SHARE),),
    )


def freshness(*, width: int = 16) -> Panel:
    """When the board's figures were read, and the newest event among those they count."""
    return Panel(
        "Số liệu tính lúc · sự kiện mới nhất đã tính",
        "stat",
        ApiQuery(
            "/v1/metrics/on_time_rate",
            SCOPE_PARAMS,
            "provenance",
            (
                ("computed_at", "computed_at", "timestamp"),
                ("watermark", "watermark", "timestamp"),
            ),
        ),
        description="Mọi số liệu của bảng do API tính trực tiếp khi tải bảng (không qua bản chụp): "
        "'tính lúc' là thời điểm đọc kho dữ liệu, 'sự kiện mới nhất' là thời điểm nhập của sự "
        "kiện mới nhất trong các số liệu.",
        unit="dateTimeAsLocal",
        width=width,
        height=3,
        options={"textMode": "value_and_name", "colorMode": "none"},
    )


def completeness_stat(*, width: int = 8) -> Panel:
    """How complete the board's figures are: the share of the source's dossiers motcua holds,
    for the board's scope and range, red below the threshold."""
    return Panel(
        "Hồ sơ nguồn báo đã nhận",
        "stat",
        ApiQuery(
            "/v1/metrics/on_time_rate",
            SCOPE_PARAMS,
            "provenance.completeness",
            (("share", "share", "number"),),
        ),
        description=COMPLETENESS_DESCRIPTION,
        unit="percentunit",
        width=width,
        height=3,
        decimals=2,
        thresholds=share_thresholds(),
    )
