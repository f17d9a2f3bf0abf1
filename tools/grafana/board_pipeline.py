"""The pipeline's own health: ingest lag (ingested_at − published_at), throughput, dead letters
per integrator, how fresh the stored events, figures and plan statuses are, and how complete each
agency's data is against its source's daily manifests."""

from __future__ import annotations

from core.figures.completeness import LOOKBACK_DAYS
from core.zone import TZ
from tools.grafana.api_panels import completeness_threshold, share_override
from tools.grafana.model import TIME_SERIES, Dashboard, Panel, Query
from tools.grafana.sql import AGENCY_NAMES, agency_filter
from tools.grafana.variables import AGENCY, LEVEL, SCOPE

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


# The range's local days, cut at the last ended one: a day still running expects no manifest yet.
_FIRST_DAY = f"toDate($__fromTime, '{TZ}')"
_LAST_DAY = f"least(toDate($__toTime, '{TZ}'), toDate(now(), '{TZ}') - 1)"


def _completeness() -> Panel:
    """Per agency of the board's scope, over the range's ended days: the latest judgment of
    each agency-day (reconciliation_days) summed, as the API's completeness reads them
    (core/figures/completeness.py summary: the days an agency expects a manifest run from
    its first judged day, looked for from LOOKBACK_DAYS before the range)."""
    threshold = completeness_threshold()
    days = (
        f"SELECT agency_code, day, day >= {_FIRST_DAY} AS p, "
        "argMax((reported_received, held_received, missing, extra), evaluated_at) AS v "
        f"FROM reconciliation_days WHERE {agency_filter()} "
        f"AND day >= {_FIRST_DAY} - {LOOKBACK_DAYS} AND day <= {_LAST_DAY} "
        f"AND {_LAST_DAY} >= {_FIRST_DAY} GROUP BY agency_code, day"
    )
    per_agency = (
        "SELECT agency_code, toInt64(sumIf(v.1, p)) AS reported, toInt64(sumIf(v.2, p)) AS held, "
        "if(reported = 0, NULL, held / reported) AS share, toInt64(sumIf(v.3, p)) AS missing, "
        "toInt64(sumIf(v.4, p)) AS extra, toInt64(countIf(p)) AS manifest_days, "
        f"greatest(toInt64(dateDiff('day', greatest(min(day), {_FIRST_DAY}), {_LAST_DAY})) + 1 "
        "- manifest_days, 0) AS days_without_manifest "
        f"FROM ({days}) GROUP BY agency_code"
    )
    sql = (
        "SELECT c.agency_code AS agency_code, n.agency_name AS agency, c.share AS share, "
        "c.reported AS reported, c.held AS held, c.missing AS missing, c.extra AS extra, "
        "c.manifest_days AS manifest_days, c.days_without_manifest AS days_without_manifest, "
        f"multiIf(c.share IS NULL, 'Chưa có số liệu', c.share < {threshold}, 'Chưa đủ', 'Đủ') "
        f"AS status FROM ({per_agency}) AS c LEFT JOIN {AGENCY_NAMES} AS n "
        "ON n.agency_code = c.agency_code ORDER BY c.share IS NOT NULL, c.share, c.agency_code"
    )
    return Panel(
        "Độ đầy đủ dữ liệu theo cơ quan (so với bảng kê cuối ngày của hệ thống nguồn)",
        "table",
        Query(
            sql,
            (
                ("agency_code", "LowCardinality(String)"),
                ("agency", "String"),
                ("share", "Nullable(Float64)"),
                ("reported", "Int64"),
                ("held", "Int64"),
                ("missing", "Int64"),
                ("extra", "Int64"),
                ("manifest_days", "Int64"),
                ("days_without_manifest", "Int64"),
                ("status", "String"),
            ),
        ),
        description="Mỗi cơ quan đã gửi bảng kê cuối ngày (manifest.daily), trong các ngày đã qua "
        "của khoảng thời gian đã chọn: số hồ sơ hệ thống nguồn báo đã tiếp nhận, số motcua đã "
        "nhận, tỷ lệ đã nhận (đỏ: dưới ngưỡng MOTCUA_COMPLETENESS_THRESHOLD, số liệu của cơ "
        "quan chưa đầy đủ), số hồ sơ thiếu và thừa, số ngày có và chưa có bảng kê. Cùng cách "
        "tính với completeness trong nguồn gốc số liệu của API.",
        width=24,
        height=9,
        renames={
            "agency_code": "Mã cơ quan",
            "agency": "Cơ quan",
            "share": "Đã nhận / nguồn báo",
            "reported": "Nguồn báo (hồ sơ)",
            "held": "Đã nhận",
            "missing": "Thiếu",
            "extra": "Thừa",
            "manifest_days": "Ngày có bảng kê",
            "days_without_manifest": "Ngày chưa có bảng kê",
            "status": "Tình trạng",
        },
        overrides=(share_override("share"),),
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
            _completeness(),
        ),
        (LEVEL, AGENCY, SCOPE),
        time_from="now-24h",
        refresh="1m",
    )
