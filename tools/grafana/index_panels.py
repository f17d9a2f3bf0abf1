"""The QĐ 766 index panels read from the API (GET /v1/index766), as the figure panels of
tools/grafana/api_panels.py read GET /v1/metrics."""

from __future__ import annotations

from core.figures import rules
from core.figures.index766_scores import INDICATORS
from tools.grafana.api_panels import SCOPE_PARAMS
from tools.grafana.model import ApiQuery, ColumnKind, Panel

_INDEX_PATH = "/v1/index766"


def index_stat(*, width: int = 8) -> Panel:
    return Panel(
        "Chỉ số QĐ 766 (điểm trên 100)",
        "stat",
        ApiQuery(_INDEX_PATH, SCOPE_PARAMS, "results", (("points_with_data", "points", "number"),)),
        description="Tổng điểm QĐ 766 của phạm vi đã chọn trong khoảng đã chọn, đúng như GET "
        "/v1/index766; chỉ tiêu không tính được từ dữ liệu sự kiện không có điểm (không phải 0). "
        "Không có hồ sơ, phản ánh nào trong kỳ: Chưa có số liệu.",
        unit="none",
        width=width,
        height=6,
        decimals=2,
    )


def index_indicators(*, width: int = 24) -> Panel:
    """Every indicator of the scope's index: numerator, denominator, rate, points, or why not.
    The board asks under the default rule set, so its rates are in that set's unit (a
    percentage from reference@2, a fraction of 1 before)."""
    percent = rules.get().rules.rate_unit == "percent"
    columns: tuple[tuple[str, str, ColumnKind], ...] = (
        ("id", "id", "string"),
        ("label", "label", "string"),
        ("max_points", "max_points", "number"),
        ("numerator", "numerator", "number"),
        ("denominator", "denominator", "number"),
        ("rate", "rate", "number"),
        ("points", "points", "number"),
        ("note", "note", "string"),
    )
    return Panel(
        "Các chỉ tiêu QĐ 766",
        "table",
        ApiQuery(_INDEX_PATH, SCOPE_PARAMS, "results[0].indicators", columns),
        description=f"{len(INDICATORS)} chỉ tiêu; chỉ tiêu thiếu dữ liệu để trống điểm, kèm lý do. "
        f"Tỷ lệ {'tính theo phần trăm' if percent else 'là phân số của 1'}, theo bộ quy tắc "
        f"{rules.DEFAULT_RULE_SET}.",
        width=width,
        height=14,
        decimals=2,
        renames={
            "id": "Chỉ tiêu",
            "label": "Nội dung",
            "max_points": "Điểm tối đa",
            "numerator": "Tử số",
            "denominator": "Mẫu số",
            "rate": "Tỷ lệ (%)" if percent else "Tỷ lệ",
            "points": "Điểm",
            "note": "Ghi chú",
        },
    )


def index_by_agency(*, width: int = 24) -> Panel:
    return Panel(
        "Chỉ số QĐ 766 theo cơ quan (mỗi cơ quan gồm các đơn vị trực thuộc)",
        "table",
        ApiQuery(
            _INDEX_PATH,
            (*SCOPE_PARAMS, ("group_by", "agency")),
            "results",
            (
                ("agency", "agency_code", "string"),
                ("name", "agency", "string"),
                ("points_with_data", "points", "number"),
                ("not_assessed_points", "not_assessed", "number"),
            ),
        ),
        description="Mỗi cơ quan có số liệu hoặc có đơn vị trực thuộc, điểm tính trên cả cây của "
        "cơ quan đó, như GET /v1/index766?group_by=agency.",
        width=width,
        height=10,
        decimals=2,
        renames={
            "agency_code": "Mã cơ quan",
            "agency": "Cơ quan",
            "points": "Điểm",
            "not_assessed": "Điểm không tính được từ dữ liệu",
        },
    )
