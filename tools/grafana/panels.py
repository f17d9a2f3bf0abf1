"""Panels over what the services store beside the figures: the plan tables (targets, alerts) and
the day counts' receipts. The figures themselves are read from the API
(tools/grafana/api_panels.py); labels come from the metric catalogue, never retyped here."""

from __future__ import annotations

from core.figures.definitions import METRICS
from core.zone import TZ
from tools.grafana.api_panels import SCOPE_PARAMS
from tools.grafana.model import TIME_SERIES, ApiQuery, Panel, Query
from tools.grafana.sql import (
    STATUS_LABELS,
    intake_filter,
    labels,
    latest_targets,
    metric_label,
    quoted,
    target_agency_filter,
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


# Dossiers received per day by channel and by level: the numerators and denominators of the API's
# intake shares, so that they add up to what GET /v1/metrics counts as received.
_CHANNELS = (
    ("online_share", "Trực tuyến"),
    ("direct_share", "Trực tiếp"),
    ("postal_share", "Bưu chính công ích"),
)
_LEVELS = (("province", "Cấp tỉnh"), ("district", "Cấp huyện"), ("commune", "Cấp xã"))


def _received_by_day(
    metric_id: str, value: str, name: str, extra: tuple[tuple[str, str], ...] = ()
) -> ApiQuery:
    return ApiQuery(
        f"/v1/metrics/{metric_id}",
        (*SCOPE_PARAMS, ("group_by", "day"), *extra),
        "groups",
        (("group", "time", "day"), (value, name, "number")),
    )


def intake_by_channel(title: str, *, domain: str = "", width: int = 12) -> Panel:
    """Dossiers received per day, one series per channel (the API's intake shares)."""
    extra = (("domain", domain),) if domain else ()
    first, *rest = (_received_by_day(m, "numerator", label, extra) for m, label in _CHANNELS)
    return Panel(
        title,
        "timeseries",
        first,
        more=tuple(rest),
        description="Hồ sơ tiếp nhận mỗi ngày (ngày Việt Nam) theo kênh nộp: tử số của các tỷ lệ "
        "nộp trực tuyến, trực tiếp, bưu chính công ích của API, cùng phạm vi và khoảng thời gian.",
        unit="short",
        width=width,
        height=9,
        options={"stacking": {"mode": "normal"}},
    )


def intake_by_level(title: str, *, width: int = 12) -> Panel:
    """Dossiers received per day, one series per level of the receiving agency's procedure."""
    first, *rest = (
        _received_by_day("online_share", "denominator", label, (("level", level),))
        for level, label in _LEVELS
    )
    return Panel(
        title,
        "timeseries",
        first,
        more=tuple(rest),
        description="Hồ sơ tiếp nhận mỗi ngày (ngày Việt Nam) theo cấp: mẫu số của tỷ lệ nộp trực "
        "tuyến của API, lọc theo cấp.",
        unit="short",
        width=width,
        height=9,
    )


def intake_by(column: str, title: str, where: str = "1", *, width: int = 12) -> Panel:
    """Dossiers received per day, split by `column` (a domain has no fixed list to ask the API
    one series each for), from the day counts: local days, the board's agency subtree. A day
    count holds a receipt once the metrics service has folded its dossier (seconds behind the
    API, which adds what is not folded yet)."""
    sql = (
        f"SELECT toDateTime(day, '{TZ}') AS time, toString(ifNull({column}, '')) AS {column}, "
        "sum(n) AS received FROM dossier_days "
        f"WHERE anchor = 'received' AND day >= toDate($__fromTime, '{TZ}') "
        f"AND day <= toDate($__toTime, '{TZ}') AND {intake_filter()} AND ({where}) "
        f"GROUP BY day, {column} HAVING received != 0 ORDER BY time, {column}"
    )
    return Panel(
        title,
        "timeseries",
        Query(
            sql,
            (
                ("time", f"DateTime('{TZ}')"),
                (column, "LowCardinality(String)"),
                ("received", "Int64"),
            ),
            format=TIME_SERIES,
        ),
        description="Hồ sơ tiếp nhận mỗi ngày (ngày Việt Nam, mọi ngày mà khoảng đã chọn chạm "
        "tới), từ số đếm theo ngày (dossier_days) mà dịch vụ tính toán giữ: chậm hơn API vài giây.",
        unit="short",
        width=width,
        height=9,
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
