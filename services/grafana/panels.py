"""Panels built from the metric catalogue (services/metrics/definitions.py) and the plan tables:
the label, description and unit of a figure come from its definition, never retyped here."""

from __future__ import annotations

from collections.abc import Sequence

from services.grafana.model import TIME_SERIES, Panel, Query
from services.grafana.sql import (
    AGENCY_NAMES,
    STATUS_LABELS,
    intake_filter,
    labels,
    latest_figures,
    latest_targets,
    metric_label,
    metric_rate,
    quoted,
    rate,
    target_agency_filter,
)
from services.metrics.definitions import METRICS, TZ

RATE = "Nullable(Float64)"
# Status colours: red below the plan's usual floors, green from them.
SHARE_STEPS: tuple[tuple[float | None, str], ...] = ((None, "red"), (0.3, "orange"), (0.9, "green"))


def _unit(metric_id: str) -> str:
    return "m" if METRICS[metric_id].unit == "minutes" else "percentunit"


def _describe(metric_id: str) -> str:
    m = METRICS[metric_id]
    target = f" Mục tiêu: {m.target}." if m.target else ""
    return f"{m.description}{target} Nguồn: metric_snapshots (số liệu năm đến thời điểm cuối)."


def metric_stat(metric_id: str, *, width: int = 4) -> Panel:
    """The figure for the selected agencies together, year to date at the dashboard's end."""
    return Panel(
        METRICS[metric_id].label,
        "stat",
        Query(
            f"SELECT {rate()} AS value FROM ({latest_figures([metric_id])})",
            (("value", RATE),),
        ),
        description=_describe(metric_id),
        unit=_unit(metric_id),
        width=width,
        height=5,
        decimals=1,
    )


def metric_count_stat(metric_id: str, title: str, *, width: int = 4) -> Panel:
    """The numerator alone (e.g. dossiers due soon without an apology: a to-do count)."""
    return Panel(
        title,
        "stat",
        Query(
            f"SELECT toUInt64(sum(num)) AS value FROM ({latest_figures([metric_id])})",
            (("value", "UInt64"),),
        ),
        description=_describe(metric_id),
        unit="short",
        width=width,
        height=5,
    )


def monthly_trend(metric_ids: Sequence[str], title: str, *, width: int = 12) -> Panel:
    """Each month's figure (the month's latest snapshot), one series per metric."""
    unit = _unit(metric_ids[0])
    return Panel(
        title,
        "timeseries",
        Query(
            f"SELECT toDateTime(period_start, '{TZ}') AS time, {metric_label()} AS metric, "
            f"{rate()} AS value FROM ({latest_figures(metric_ids, trend=True)}) "
            "GROUP BY period_start, metric ORDER BY time, metric",
            (
                ("time", f"DateTime('{TZ}')"),
                ("metric", "String"),
                ("value", RATE),
            ),
            format=TIME_SERIES,
        ),
        description="Số liệu từng tháng (lần tính cuối cùng của tháng), các cơ quan đã chọn cộng "
        "lại: tổng tử số / tổng mẫu số.",
        unit=unit,
        width=width,
        height=9,
        options={"legend": {"displayMode": "table", "placement": "bottom"}},
    )


def agency_metric_columns(metric_ids: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((m, RATE) for m in metric_ids)


def by_agency(
    metric_ids: Sequence[str], title: str, *, width: int = 24, kind: str = "table"
) -> Panel:
    """One row per agency, one column per metric (year to date)."""
    columns = ", ".join(f"{metric_rate(m)} AS {m}" for m in metric_ids)
    sql = (
        f"SELECT f.agency_code AS agency_code, any(n.agency_name) AS agency, {columns} "
        f"FROM ({latest_figures(metric_ids)}) AS f LEFT JOIN {AGENCY_NAMES} AS n "
        "ON n.agency_code = f.agency_code GROUP BY f.agency_code ORDER BY f.agency_code"
    )
    renames = {m: METRICS[m].label for m in metric_ids}
    return Panel(
        title,
        "table" if kind == "table" else "bargauge",
        Query(
            sql,
            (
                ("agency_code", "LowCardinality(String)"),
                ("agency", "String"),
                *agency_metric_columns(metric_ids),
            ),
        ),
        description="Năm đến thời điểm cuối của bảng; mỗi cơ quan trên hồ sơ của chính cơ quan.",
        unit=_unit(metric_ids[0]),
        width=width,
        height=10,
        decimals=1,
        renames=renames,
    )


_TARGET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("target_id", "LowCardinality(String)"),
    ("agency_code", "LowCardinality(String)"),
    ("period_start", "Date32"),
    ("metric", "String"),
    ("comparator", "String"),
    ("threshold", "Float64"),
    ("value", "Nullable(Float64)"),
    ("status", "String"),
    ("forecast", "Nullable(Float64)"),
    ("budget", "Nullable(Int64)"),
    ("needed", "Nullable(Int64)"),
    ("evaluated_at", "DateTime64(3, 'UTC')"),
)


def targets_table(title: str, where: str = "1", *, width: int = 24) -> Panel:
    """Latest status of the selected plan's targets (scope rows and the selected agencies)."""
    sql = (
        "SELECT target_id, agency_code, period_start, "
        f"{metric_label()} AS metric, comparator, threshold, value, "
        f"{labels('status', STATUS_LABELS)} AS status, forecast, budget, needed, evaluated_at "
        f"FROM ({latest_targets(f'{where} AND {target_agency_filter()}')}) "
        "ORDER BY target_id, agency_code, period_start"
    )
    return Panel(
        title,
        "table",
        Query(sql, _TARGET_COLUMNS),
        description="Trạng thái mới nhất của từng mục tiêu (theo kế hoạch đã chọn), do dịch vụ "
        "đánh giá kế hoạch ghi vào target_status. Dòng không có mã cơ quan là cả phạm vi mục tiêu. "
        "budget: số hồ sơ còn được phép trễ; needed: số hồ sơ còn thiếu để đạt.",
        width=width,
        height=10,
        renames=TARGET_RENAMES,
    )


TARGET_RENAMES = {
    "target_id": "Mục tiêu",
    "agency_code": "Mã cơ quan",
    "agency": "Cơ quan",
    "period_start": "Đầu kỳ",
    "metric": "Chỉ số",
    "comparator": "So sánh",
    "threshold": "Ngưỡng",
    "value": "Giá trị",
    "status": "Trạng thái",
    "forecast": "Dự báo cuối kỳ",
    "budget": "Còn được phép trễ",
    "needed": "Còn thiếu",
    "evaluated_at": "Đánh giá lúc",
    "numerator": "Tử số",
    "denominator": "Mẫu số",
}


def intake_by(column: str, title: str, where: str = "1", *, width: int = 12) -> Panel:
    """Dossiers received per day, split by `column` (channel, domain_code, level)."""
    sql = (
        f"SELECT toDateTime(day, '{TZ}') AS time, toString({column}) AS {column}, "
        "uniqExactMerge(received) AS received FROM dossier_intake_daily "
        f"WHERE $__dateFilter(day) AND {intake_filter()} AND ({where}) "
        f"GROUP BY day, {column} ORDER BY time, {column}"
    )
    return Panel(
        title,
        "timeseries",
        Query(
            sql,
            (
                ("time", f"DateTime('{TZ}')"),
                (column, "LowCardinality(String)"),
                ("received", "UInt64"),
            ),
            format=TIME_SERIES,
        ),
        description="Hồ sơ tiếp nhận mỗi ngày (giờ Việt Nam), từ bảng tổng hợp "
        "dossier_intake_daily.",
        unit="short",
        width=width,
        height=9,
        options={"stacking": {"mode": "normal"}} if column == "channel" else {},
    )


def status_counts(title: str, *, width: int = 8) -> Panel:
    """How many targets (agency rows included) are in each status now."""
    sql = (
        f"SELECT {labels('status', STATUS_LABELS)} AS status, count() AS targets "
        f"FROM ({latest_targets(target_agency_filter())}) GROUP BY status ORDER BY targets DESC"
    )
    return Panel(
        title,
        "bargauge",
        Query(sql, (("status", "String"), ("targets", "UInt64"))),
        description="Số cặp (mục tiêu, cơ quan) theo trạng thái mới nhất.",
        unit="short",
        width=width,
        height=8,
    )


def firing_alerts(title: str, *, width: int = 16) -> Panel:
    sql = (
        "SELECT changed_at, severity, kind, target_id, agency_code, "
        f"{labels('status', STATUS_LABELS)} AS status, summary FROM alerts_current "
        "WHERE state = 'firing' AND plan = ${plan:singlequote} "
        f"AND {target_agency_filter()} ORDER BY changed_at DESC LIMIT 200"
    )
    return Panel(
        title,
        "table",
        Query(
            sql,
            (
                ("changed_at", "DateTime64(3, 'UTC')"),
                ("severity", "String"),
                ("kind", "String"),
                ("target_id", "String"),
                ("agency_code", "String"),
                ("status", "String"),
                ("summary", "String"),
            ),
        ),
        description="Cảnh báo kế hoạch đang bật (bảng alerts, dịch vụ đánh giá kế hoạch ghi).",
        width=width,
        height=8,
        renames={
            **TARGET_RENAMES,
            "changed_at": "Từ lúc",
            "severity": "Mức",
            "kind": "Loại",
            "summary": "Nội dung",
        },
    )


def metric_ids(*ids: str) -> tuple[str, ...]:
    """Checked at import: a renamed metric breaks the build, not a board."""
    for i in ids:
        if i not in METRICS:
            raise KeyError(f"unknown metric {i}")
    quoted(ids)
    return ids
