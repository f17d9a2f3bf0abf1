"""The QĐ 766 indicators (reference §4) and how a rate becomes points under a rule set: the
scores of core/figures/index766.py.

How a rate becomes points is a rule (rules.Rules.points_from): reference@1 scored the rate as
shown, a fraction rounded to 2 decimals (5/9 → 0.56, 11.2 of 20 points), and added the points as
shown; from reference@2 the rate is a percentage like every other figure (55.56) and points come
from the exact numerator / denominator (11.11), kept exact (Fraction) until shown, so a group or
the total is the sum of unrounded points, rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from core.figures.rules import RuleSet


@dataclass(frozen=True)
class Indicator:
    id: str
    group: str
    label: str
    max_points: float
    rule: str  # "lin" or "thr:<T>"
    empty_points: float | None = None  # points when the denominator is 0; None: missing
    missing_reason: str = ""  # set: the data cannot support it (always missing)


GROUPS = {
    "1": ("Công khai, minh bạch", 18),
    "2": ("Tiến độ, kết quả giải quyết", 20),
    "3": ("Dịch vụ công trực tuyến", 12),
    "3p": ("Thanh toán trực tuyến", 10),
    "4": ("Số hóa hồ sơ", 22),
    "5": ("Mức độ hài lòng", 18),
}

_NO_EVENTS = "dữ liệu này không có trong sự kiện hồ sơ (cần số liệu của Cổng DVC quốc gia)"

INDICATORS: tuple[Indicator, ...] = (
    Indicator("1.1", "1", "TTHC công bố đúng hạn", 6, "lin"),
    Indicator("1.2", "1", "TTHC cập nhật, công khai đúng hạn", 4, "lin"),
    Indicator("1.3", "1", "TTHC công khai đầy đủ", 2, "lin"),
    Indicator("1.4", "1", "Hồ sơ đồng bộ lên Cổng DVCQG", 6, "lin", missing_reason=_NO_EVENTS),
    Indicator("2.1", "2", "Hồ sơ xử lý trước hạn, đúng hạn", 20, "lin"),
    Indicator("3.1", "3", "TTHC cung cấp DVCTT", 2, "thr:0.8"),
    Indicator("3.2", "3", "DVCTT có phát sinh hồ sơ", 4, "lin"),
    Indicator("3.3", "3", "Hồ sơ trực tuyến", 6, "thr:0.5"),
    Indicator("3.5", "3p", "TTHC có NVTC tích hợp thanh toán trực tuyến", 2, "thr:0.8"),
    Indicator("3.5b", "3p", "TTHC có giao dịch thanh toán trực tuyến", 2, "thr:0.8"),
    Indicator("3.6", "3p", "Hồ sơ thanh toán trực tuyến", 6, "lin"),
    Indicator("4.1", "4", "Hồ sơ có kết quả điện tử", 6, "lin"),
    Indicator("4.2", "4", "Hồ sơ thực hiện số hóa", 4, "thr:0.8"),
    Indicator(
        "4.x", "4", "Xã cung cấp chứng thực bản sao điện tử", 2, "lin", missing_reason=_NO_EVENTS
    ),
    Indicator(
        "4.3", "4", "Hồ sơ tái sử dụng dữ liệu số hóa", 2, "thr:0.8", missing_reason=_NO_EVENTS
    ),
    Indicator("4.4", "4", "Hồ sơ số hóa kết nối kho dữ liệu", 4, "lin", missing_reason=_NO_EVENTS),
    Indicator(
        "4.5a", "4", "TTHC kết nối CSDL quốc gia về dân cư", 2, "lin", missing_reason=_NO_EVENTS
    ),
    Indicator(
        "4.5b", "4", "Hồ sơ kết nối CSDL quốc gia về dân cư", 2, "lin", missing_reason=_NO_EVENTS
    ),
    Indicator("5.2", "5", "PAKN xử lý đúng hạn", 6, "lin", empty_points=6),
    Indicator("5.3", "5", "Hài lòng trong xử lý PAKN", 6, "lin", empty_points=6),
    Indicator(
        "5.4", "5", "Hài lòng trong tiếp nhận, giải quyết TTHC", 6, "thr:0.9", empty_points=0
    ),
)


@dataclass
class Score:
    indicator: Indicator
    numerator: int | None
    denominator: int | None
    rate: float | None  # in the rule set's unit (rules.Rules.rate_unit), rounded
    points: float | None  # rounded to 2 decimals
    rule: str
    note: str = ""
    # The points unrounded, what a group's and the total's points add up when the rule set
    # keeps them exact (points_from exact_rate); None otherwise, and when missing.
    exact_points: Fraction | None = None

    def as_dict(self) -> dict[str, Any]:
        i = self.indicator
        return {
            "id": i.id,
            "group": i.group,
            "label": i.label,
            "max_points": i.max_points,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "rate": self.rate,
            "points": self.points,
            "rule": self.rule,
            "missing": self.points is None,
            "note": self.note,
        }


def points_sum(scores: list[Score], exact: bool) -> float:
    """The scores' points added up and rounded once: `exact`, their unrounded points; else as
    reference@1 added them (the points as shown, Python's round)."""
    if exact:
        return half_up(sum((s.exact_points for s in scores if s.exact_points), Fraction(0)), 2)
    return round(sum(s.points or 0 for s in scores), 2)


def half_up(value: Fraction, decimals: int) -> float:
    """`value` (≥ 0) to `decimals` decimals, a half rounded up as a report rounds it, exactly:
    a float's round() rounds half to even on a binary approximation (round(0.125, 2) is 0.12,
    round(1.005, 2) is 1.0)."""
    return _half_up_ratio(value.numerator, value.denominator, decimals)


def _half_up_ratio(p: int, q: int, decimals: int) -> float:
    """half_up(p / q) in integers: a Fraction for each step made scoring an agency tree four
    times slower (18 ms instead of 4 at 10M)."""
    scale: int = 10**decimals
    return (2 * p * scale + q) // (2 * q) / scale


def score(indicator: Indicator, num: int | None, den: int | None, rule_set: RuleSet) -> Score:
    rule = indicator.rule
    if indicator.id == "4.2" and rule_set.rules.score_4_2 == "lin":
        rule = "lin"
    if indicator.missing_reason:
        return Score(indicator, None, None, None, None, rule, indicator.missing_reason)
    if num is None or den is None:
        return Score(indicator, num, den, None, None, rule, "không đủ dữ liệu danh mục")
    exact = rule_set.rules.points_from == "exact_rate"
    if den == 0:
        if indicator.empty_points is None:
            return Score(indicator, num, den, None, None, rule, "không có đối tượng trong kỳ")
        empty = indicator.empty_points
        return Score(
            indicator,
            num,
            den,
            None,
            empty,
            rule,
            "không có đối tượng trong kỳ: điểm theo quy định",
            Fraction(empty) if exact else None,
        )
    if exact:
        points = _exact_points(indicator, rule, Fraction(num, den))
        rate = _shown_rate(num, den, rule_set)
        return Score(indicator, num, den, rate, half_up(points, 2), rule, exact_points=points)
    return _rounded_rate_score(indicator, rule, num, den, rule_set)


def _shown_rate(num: int, den: int, rule_set: RuleSet) -> float:
    r = rule_set.rules
    scale = 100 if r.rate_unit == "percent" else 1
    return _half_up_ratio(num * scale, den, r.rate_decimals)


def _exact_points(indicator: Indicator, rule: str, rate: Fraction) -> Fraction:
    top = Fraction(indicator.max_points)
    if rule == "lin":
        return top * rate
    threshold = Fraction(rule.split(":")[1])  # "0.8" → 4/5, exactly
    return top if rate >= threshold else top * rate / threshold


def _rounded_rate_score(
    indicator: Indicator, rule: str, num: int, den: int, rule_set: RuleSet
) -> Score:
    """reference@1's scoring, kept as it computed: the rate rounded as a float first (Python's
    round), points from that rounded rate."""
    r = rule_set.rules
    rate = round(num / den, r.rate_decimals)
    fraction = rate
    if r.rate_unit == "percent":
        rate = round(100 * num / den, r.rate_decimals)
        fraction = rate / 100
    if rule == "lin":
        points = indicator.max_points * fraction
    else:
        threshold = float(rule.split(":")[1])
        points = indicator.max_points * (1 if fraction >= threshold else fraction / threshold)
    return Score(indicator, num, den, rate, round(points, 2), rule)
