"""The province overview against the plan's targets, the agency drill-down, and the land domain."""

from __future__ import annotations

from core.figures.definitions import METRICS
from tools.grafana.api_panels import (
    by_agency,
    completeness_stat,
    freshness,
    metric_stat,
    monthly_trend,
)
from tools.grafana.model import TIME_SERIES, Dashboard, Panel, Query
from tools.grafana.panels import (
    TARGET_RENAMES,
    firing_alerts,
    intake_by,
    intake_by_channel,
    metric_ids,
    status_counts,
    targets_table,
)
from tools.grafana.plans import LAND_DOMAIN, land_late_targets
from tools.grafana.sql import AGENCY_NAMES, latest_targets, quoted, target_agency_filter
from tools.grafana.variables import ALL_VARIABLES

HEADLINE = metric_ids(
    "on_time_rate",
    "online_share",
    "online_payment_share",
    "digitized_share",
    "feedback_answered_on_time",
    "apology_compliance",
)


def overview() -> Dashboard:
    return Dashboard(
        "motcua-overview",
        "Tổng quan tỉnh Khánh Hòa — mục tiêu kế hoạch",
        "Các chỉ số chính của toàn tỉnh (hoặc các cơ quan đã chọn) và trạng thái các mục tiêu "
        "của kế hoạch đã chọn.",
        (
            freshness(),
            completeness_stat(),
            *(metric_stat(m) for m in HEADLINE),
            status_counts("Mục tiêu theo trạng thái"),
            firing_alerts("Cảnh báo đang bật"),
            targets_table("Mục tiêu của kế hoạch (toàn phạm vi)", "agency_code = ''"),
            monthly_trend(HEADLINE[:4], "Diễn biến theo tháng: hồ sơ"),
            monthly_trend(HEADLINE[4:], "Diễn biến theo tháng: phản ánh, xin lỗi"),
            intake_by("domain_code", "Hồ sơ tiếp nhận theo lĩnh vực", width=24),
        ),
        ALL_VARIABLES,
    )


ALL_DOSSIER = metric_ids(
    "on_time_rate",
    "late_rate",
    "open_overdue_rate",
    "online_share",
    "online_payment_share",
    "digitized_share",
    "e_result_share",
    "apology_compliance",
)
ALL_FEEDBACK = metric_ids("feedback_answered_on_time", "feedback_published_share")


def agency_drilldown() -> Dashboard:
    return Dashboard(
        "motcua-agency",
        "Chi tiết theo cơ quan",
        "Từng cơ quan trong phạm vi đã chọn: các chỉ số trong khoảng thời gian đã chọn, mục tiêu "
        "kế hoạch theo cơ quan, diễn biến theo tháng.",
        (
            freshness(),
            completeness_stat(),
            by_agency(ALL_DOSSIER, "Chỉ số hồ sơ theo cơ quan"),
            by_agency((*ALL_FEEDBACK, "avg_processing_minutes"), "Phản ánh, thời gian giải quyết"),
            targets_table("Mục tiêu theo cơ quan", "agency_code != ''"),
            monthly_trend(
                ("on_time_rate",), "Tỷ lệ hồ sơ giải quyết trước hạn, đúng hạn theo tháng"
            ),
            monthly_trend(("online_share",), f"{METRICS['online_share'].label} theo tháng"),
            intake_by_channel("Hồ sơ tiếp nhận theo kênh", width=24),
        ),
        ALL_VARIABLES,
    )


def land() -> Dashboard:
    ids = land_late_targets()
    where = f"target_id IN ({quoted(ids)})"
    return Dashboard(
        "motcua-land",
        "Lĩnh vực đất đai — tỷ lệ trễ hạn và ngân sách trễ hạn",
        "Mục tiêu KH 7860 A.IV.5: tỷ lệ hồ sơ trễ hạn lĩnh vực đất đai dưới 2%. Số liệu theo "
        f"lĩnh vực lấy từ target_status của các mục tiêu {', '.join(ids)} (tính trên đúng phạm vi "
        "lĩnh vực đất đai của kế hoạch); metric_snapshots không tách theo lĩnh vực.",
        (
            targets_table("Tỷ lệ trễ hạn đất đai so với mục tiêu", where),
            _land_series("value", "Tỷ lệ trễ hạn theo thời gian", "percentunit", where),
            _land_series("budget", "Ngân sách trễ hạn còn lại (hồ sơ)", "short", where),
            _burn_rates(where),
            intake_by_channel("Hồ sơ đất đai tiếp nhận", domain=LAND_DOMAIN),
        ),
        ALL_VARIABLES,
    )


def _land_series(column: str, title: str, unit: str, where: str) -> Panel:
    """One series per (target, agency): the evaluated value or budget over time."""
    sql = (
        "SELECT $__timeInterval(evaluated_at) AS time, "
        "concat(target_id, if(agency_code = '', '', concat(' · ', agency_code))) AS series, "
        f"argMax(tuple({column}), evaluated_at).1 AS {column} FROM target_status "
        "WHERE plan = ${plan:singlequote} AND $__timeFilter(evaluated_at) "
        f"AND {where} AND {target_agency_filter()} GROUP BY time, series ORDER BY time, series"
    )
    kind = "Nullable(Float64)" if column == "value" else "Nullable(Int64)"
    return Panel(
        title,
        "timeseries",
        Query(
            sql,
            (("time", "DateTime('UTC')"), ("series", "String"), (column, kind)),
            format=TIME_SERIES,
        ),
        description="Giá trị đánh giá cuối cùng trong mỗi khoảng thời gian (target_status).",
        unit=unit,
        width=12,
        height=9,
    )


def _burn_rates(where: str) -> Panel:
    sql = (
        "SELECT target_id, agency_code, any(n.agency_name) AS agency, window, "
        "any(burn_rates[window]) AS burn_rate, any(budget) AS budget FROM ("
        f"SELECT *, arrayJoin(mapKeys(burn_rates)) AS window FROM ({latest_targets(where)}) "
        f"WHERE {target_agency_filter()}) AS t LEFT JOIN {AGENCY_NAMES} AS n "
        "ON n.agency_code = t.agency_code GROUP BY target_id, agency_code, window "
        "ORDER BY target_id, agency_code, window"
    )
    return Panel(
        "Tốc độ tiêu ngân sách trễ hạn",
        "table",
        Query(
            sql,
            (
                ("target_id", "LowCardinality(String)"),
                ("agency_code", "LowCardinality(String)"),
                ("agency", "String"),
                ("window", "String"),
                ("burn_rate", "Float64"),
                ("budget", "Nullable(Int64)"),
            ),
        ),
        description="Tốc độ tiêu ngân sách theo cửa sổ thời gian: 1 nghĩa là tiêu đúng nhịp "
        "để chạm ngưỡng vào cuối kỳ; lớn hơn 1 là sẽ vượt ngưỡng nếu giữ nhịp này.",
        width=12,
        height=9,
        decimals=2,
        renames={**TARGET_RENAMES, "window": "Cửa sổ", "burn_rate": "Tốc độ tiêu"},
    )
