"""The pipeline's own health: ingest lag (ingested_at − published_at), throughput, dead letters
per integrator, and how fresh the stored events, figures and plan statuses are."""

from __future__ import annotations

from services.grafana.model import TIME_SERIES, Dashboard, Panel, Query
from services.grafana.sql import agency_filter
from services.grafana.variables import AGENCY, LEVEL, SCOPE

LAG_MS = "dateDiff('millisecond', published_at, ingested_at)"
INTEGRATOR = "if(source = '', '(không đọc được)', toString(source))"


def _age(title: str, table: str, column: str, description: str) -> Panel:
    return Panel(
        title,
        "stat",
        Query(
            f"SELECT toFloat64(dateDiff('millisecond', max({column}), now64(3))) / 1000 AS "
            f"age_seconds FROM {table}",
            (("age_seconds", "Float64"),),
        ),
        description=description,
        unit="s",
        width=8,
        height=5,
        thresholds=((None, "green"), (900, "orange"), (3600, "red")),
    )


def _lag() -> Panel:
    sql = (
        "SELECT $__timeInterval(ingested_at) AS time, "
        f"quantile(0.5)({LAG_MS}) / 1000 AS p50, quantile(0.95)({LAG_MS}) / 1000 AS p95, "
        f"max({LAG_MS}) / 1000 AS max FROM events "
        f"WHERE $__timeFilter(ingested_at) AND {agency_filter()} GROUP BY time ORDER BY time"
    )
    return Panel(
        "Độ trễ nhập dữ liệu (từ lúc JetStream lưu đến lúc ClickHouse lưu)",
        "timeseries",
        Query(
            sql,
            (
                ("time", "DateTime('UTC')"),
                ("p50", "Float64"),
                ("p95", "Float64"),
                ("max", "Float64"),
            ),
            format=TIME_SERIES,
        ),
        description="ingested_at − published_at của các sự kiện hợp lệ: trung vị, phân vị 95, "
        "lớn nhất.",
        unit="s",
        width=12,
        height=9,
    )


def _throughput() -> Panel:
    sql = (
        "SELECT $__timeInterval(ingested_at) AS time, toString(source) AS integrator, "
        "count() AS events FROM events "
        f"WHERE $__timeFilter(ingested_at) AND {agency_filter()} "
        "GROUP BY time, integrator ORDER BY time, integrator"
    )
    return Panel(
        "Sự kiện đã lưu theo hệ thống gửi",
        "timeseries",
        Query(
            sql,
            (
                ("time", "DateTime('UTC')"),
                ("integrator", "LowCardinality(String)"),
                ("events", "UInt64"),
            ),
            format=TIME_SERIES,
        ),
        unit="short",
        width=12,
        height=9,
    )


def _dead_letter_series() -> Panel:
    sql = (
        f"SELECT $__timeInterval(dead_lettered_at) AS time, {INTEGRATOR} AS integrator, "
        "count() AS dead_letters FROM dead_letters "
        f"WHERE $__timeFilter(dead_lettered_at) AND {agency_filter()} "
        "GROUP BY time, integrator ORDER BY time, integrator"
    )
    return Panel(
        "Sự kiện bị từ chối (dead letters) theo hệ thống gửi",
        "timeseries",
        Query(
            sql,
            (("time", "DateTime('UTC')"), ("integrator", "String"), ("dead_letters", "UInt64")),
            format=TIME_SERIES,
        ),
        unit="short",
        width=12,
        height=9,
        options={"stacking": {"mode": "normal"}},
    )


def _dead_letter_table() -> Panel:
    sql = (
        f"SELECT {INTEGRATOR} AS integrator, agency_code, reason, count() AS dead_letters, "
        "max(dead_lettered_at) AS last_at, argMax(detail, dead_lettered_at) AS last_detail "
        f"FROM dead_letters WHERE $__timeFilter(dead_lettered_at) AND {agency_filter()} "
        "GROUP BY integrator, agency_code, reason ORDER BY dead_letters DESC LIMIT 500"
    )
    return Panel(
        "Dead letters theo hệ thống gửi, cơ quan và lý do",
        "table",
        Query(
            sql,
            (
                ("integrator", "String"),
                ("agency_code", "LowCardinality(String)"),
                ("reason", "LowCardinality(String)"),
                ("dead_letters", "UInt64"),
                ("last_at", "DateTime64(3, 'UTC')"),
                ("last_detail", "String"),
            ),
        ),
        description="Sự kiện bị từ chối, kèm lý do; chi tiết và bản gốc: GET /v1/dead-letters.",
        width=12,
        height=9,
        renames={
            "integrator": "Hệ thống gửi",
            "agency_code": "Mã cơ quan",
            "reason": "Lý do",
            "dead_letters": "Số sự kiện",
            "last_at": "Lần cuối",
            "last_detail": "Chi tiết lần cuối",
        },
    )


def pipeline() -> Dashboard:
    return Dashboard(
        "motcua-pipeline",
        "Sức khỏe hệ thống: nhập dữ liệu và tính toán",
        "Độ trễ nhập, lưu lượng, sự kiện bị từ chối và độ mới của dữ liệu, số liệu, trạng thái.",
        (
            _age(
                "Sự kiện mới nhất cách đây",
                "events",
                "ingested_at",
                "Thời gian từ lần lưu sự kiện gần nhất (ingested_at) đến nay.",
            ),
            _age(
                "Số liệu tính lần cuối cách đây",
                "metric_snapshots",
                "computed_at",
                "Dịch vụ tính chỉ số ghi lại mọi số liệu ít nhất mỗi giờ.",
            ),
            _age(
                "Trạng thái mục tiêu đánh giá lần cuối cách đây",
                "target_status",
                "evaluated_at",
                "Dịch vụ đánh giá kế hoạch ghi lại mọi trạng thái ít nhất mỗi giờ.",
            ),
            _lag(),
            _throughput(),
            _dead_letter_series(),
            _dead_letter_table(),
        ),
        (LEVEL, AGENCY, SCOPE),
        time_from="now-24h",
        refresh="1m",
    )
