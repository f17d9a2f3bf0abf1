"""The QĐ 766 index of the board's scope and range, as GET /v1/index766 computes it.

The board used to rebuild four indicators in SQL from the metrics service's snapshots (at most 36
of the 100 points, current periods only): it never showed the API's index. Now the total, every
indicator (numerator, denominator, rate, points, or why it cannot be assessed) and the index per
agency are the API's own answers (tools/grafana/api_panels.py); the catalogue indicators the
plan tracks as targets stay in the targets table.
"""

from __future__ import annotations

from tools.grafana.api_panels import completeness_stat, freshness
from tools.grafana.index_panels import index_by_agency, index_indicators, index_stat
from tools.grafana.model import Dashboard, Panel
from tools.grafana.panels import targets_table
from tools.grafana.variables import ALL_VARIABLES

ABOUT = (
    "Chỉ số QĐ 766 (100 điểm) của cơ quan đã chọn, gồm các đơn vị trực thuộc theo Phạm vi, trong "
    "khoảng thời gian đã chọn: đúng số liệu của GET /v1/index766. Chỉ tiêu cần số liệu ngoài sự "
    "kiện hồ sơ (Cổng DVC quốc gia) không có điểm và được ghi rõ; không có số liệu không phải là 0."
)


def index766() -> Dashboard:
    return Dashboard(
        "motcua-index766",
        "Chỉ số QĐ 766 theo cơ quan",
        "Chỉ số QĐ 766 đầy đủ như API /v1/index766, theo cơ quan và khoảng thời gian đã chọn.",
        (
            freshness(),
            completeness_stat(),
            index_stat(),
            Panel("Về bảng này", "text", content=ABOUT, width=16, height=6),
            index_indicators(),
            index_by_agency(),
            targets_table(
                "Chỉ tiêu 766 theo mục tiêu kế hoạch (danh mục TTHC)", "metric LIKE 'index766:%'"
            ),
        ),
        ALL_VARIABLES,
    )
