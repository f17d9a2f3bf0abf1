"""The QĐ 766 index by agency, from what is stored.

No table stores the 766 index itself: GET /v1/index766 computes all 100 points on demand. What
the stored figures support exactly is used here, and nothing else:
- 2.1, 4.1, 4.2, 5.2 are sums of metric snapshots whose definitions are the indicator's own
  (services/metrics/index766.py `_counts`): 2.1 = on time (finished) + within deadline (open)
  over finished + open; 4.1 = e_result_share; 4.2 = digitized_share; 5.2 = answered on time +
  open within deadline (open − open overdue) over feedback filed.
- The catalogue indicators (1.1, 1.2, 3.5b …) only where a plan target measures them: their
  latest figures in target_status.
Points follow each indicator's scoring rule (INDICATORS) and the default rule set (rounding, the
rule for 4.2). 3.3, 3.6, 5.3 and 5.4 are NOT derivable from snapshots (their numerators differ
from the stored metrics') and are left out, never approximated.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.grafana.model import Dashboard, Panel, Query
from services.grafana.panels import RATE, targets_table
from services.grafana.sql import AGENCY_NAMES, latest_figures
from services.grafana.variables import ALL_VARIABLES
from services.metrics import rules
from services.metrics.index766 import INDICATORS, Indicator


@dataclass(frozen=True)
class Derived:
    indicator: str
    plus: tuple[str, ...]  # metrics whose numerators add up
    minus: tuple[str, ...]  # metrics whose numerators are subtracted
    denominators: tuple[str, ...]  # metrics whose denominators add up


DERIVED = (
    Derived(
        "2.1",
        ("on_time_rate", "open_within_deadline_rate"),
        (),
        ("on_time_rate", "open_within_deadline_rate"),
    ),
    Derived("4.1", ("e_result_share",), (), ("e_result_share",)),
    Derived("4.2", ("digitized_share",), (), ("digitized_share",)),
    Derived(
        "5.2",
        ("feedback_answered_on_time", "feedback_open"),
        ("feedback_open_overdue",),
        ("feedback_answered_on_time",),
    ),
)
_BY_ID: dict[str, Indicator] = {i.id: i for i in INDICATORS}


def _sum(metrics: tuple[str, ...], column: str) -> str:
    if not metrics:
        return "0"
    inner = " + ".join(f"sumIf({column}, metric = '{m}')" for m in metrics)
    return f"toInt64({inner})"


def _points(d: Derived) -> str:
    """The indicator's points from its numerator n and denominator m (index766.score)."""
    indicator = _BY_ID[d.indicator]
    rule_set = rules.get()
    rule = indicator.rule
    if indicator.id == "4.2" and rule_set.rules.score_4_2 == "lin":
        rule = "lin"
    n = f"({_sum(d.plus, 'num')} - {_sum(d.minus, 'num')})"
    m = _sum(d.denominators, "den")
    r = f"round({n} / {m}, {rule_set.rules.rate_decimals})"
    if rule == "lin":
        points = f"{indicator.max_points} * {r}"
    else:
        t = float(rule.split(":")[1])
        points = f"{indicator.max_points} * if({r} >= {t}, 1, {r} / {t})"
    empty = "NULL" if indicator.empty_points is None else str(indicator.empty_points)
    return f"CAST(if({m} = 0, {empty}, round({points}, 2)) AS Nullable(Float64))"


def _metrics() -> tuple[str, ...]:
    return tuple(sorted({m for d in DERIVED for m in (*d.plus, *d.minus, *d.denominators)}))


def _column(d: Derived) -> str:
    return "i" + d.indicator.replace(".", "_")


def points_by_agency() -> Panel:
    cols = ", ".join(f"{_points(d)} AS {_column(d)}" for d in DERIVED)
    total = " + ".join(f"ifNull({_column(d)}, 0)" for d in DERIVED)
    sql = (
        f"SELECT agency_code, agency, {', '.join(_column(d) for d in DERIVED)}, "
        f"round({total}, 2) AS points FROM ("
        f"SELECT f.agency_code AS agency_code, any(n.agency_name) AS agency, {cols} "
        f"FROM ({latest_figures(_metrics())}) AS f LEFT JOIN {AGENCY_NAMES} AS n "
        "ON n.agency_code = f.agency_code GROUP BY f.agency_code) ORDER BY points DESC, agency_code"
    )
    return Panel(
        "Điểm các chỉ tiêu 766 tính được từ số liệu đã lưu, theo cơ quan",
        "table",
        Query(
            sql,
            (
                ("agency_code", "LowCardinality(String)"),
                ("agency", "String"),
                *((_column(d), RATE) for d in DERIVED),
                ("points", "Float64"),
            ),
        ),
        description=_description(),
        width=24,
        height=10,
        decimals=2,
        renames={
            "agency_code": "Mã cơ quan",
            "agency": "Cơ quan",
            "points": f"Tổng (tối đa {_max_points()})",
            **{
                _column(d): f"{d.indicator} {_BY_ID[d.indicator].label} "
                f"(/{_BY_ID[d.indicator].max_points:g})"
                for d in DERIVED
            },
        },
    )


def province_points() -> Panel:
    cols = " + ".join(f"ifNull({_points(d)}, 0)" for d in DERIVED)
    return Panel(
        f"Điểm các cơ quan đã chọn (tối đa {_max_points()} trên 100)",
        "stat",
        Query(
            f"SELECT round({cols}, 2) AS points FROM ({latest_figures(_metrics())})",
            (("points", "Float64"),),
        ),
        description=_description(),
        unit="none",
        width=8,
        height=6,
        decimals=2,
    )


def _max_points() -> str:
    return f"{sum(_BY_ID[d.indicator].max_points for d in DERIVED):g}"


def _description() -> str:
    missing = [i.id for i in INDICATORS if i.id not in {d.indicator for d in DERIVED}]
    return (
        "Chỉ gồm các chỉ tiêu tính đúng được từ số liệu đã lưu (metric_snapshots): "
        f"{', '.join(d.indicator for d in DERIVED)}. Các chỉ tiêu khác ({', '.join(missing)}) "
        "không có ở đây — xem GET /v1/index766 cho đủ 100 điểm; không có số liệu không phải là 0."
    )


def index766() -> Dashboard:
    return Dashboard(
        "motcua-index766",
        "Chỉ số QĐ 766 theo cơ quan",
        "Các chỉ tiêu QĐ 766 tính được từ số liệu đã lưu; chỉ số đầy đủ qua API /v1/index766.",
        (
            province_points(),
            Panel(
                "Về bảng này",
                "text",
                content=_description(),
                width=16,
                height=6,
            ),
            points_by_agency(),
            targets_table(
                "Chỉ tiêu 766 theo mục tiêu kế hoạch (danh mục TTHC)", "metric LIKE 'index766:%'"
            ),
        ),
        ALL_VARIABLES,
    )
