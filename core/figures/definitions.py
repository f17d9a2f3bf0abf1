"""The metric catalogue: every figure as a population and a numerator over one row per item.

One definition serves the API (on demand), the metrics service (continuous snapshots) and the
Grafana boards, so the same question gets the same number everywhere. Each figure is stored and
returned as numerator and denominator; the rate is derived at read time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from core.zone import TZ

Entity = Literal["dossier", "feedback"]
# Which facts rows a figure's population can lie in (core/figures/queries.prune_clause).
Reads = Literal["finished", "open", "finished_or_open", "received", "paid", "filed"]


@dataclass(frozen=True)
class Metric:
    id: str
    label: str  # Vietnamese, shown to users
    description: str
    entity: Entity
    population: str  # SQL boolean over the per-item row: who is counted in the denominator
    numerator: str  # SQL boolean: who of them is counted in the numerator
    # SQL time expression that places an item in a day/month bucket; None for stock figures,
    # which are judged at the end of each bucket instead.
    anchor: str | None
    target: str = ""  # the plan's target, for display; the plan issue makes targets data
    # For averages: the numerator sums this integer SQL expression over the numerator's items
    # instead of counting them, and `unit` names what the rate is in.
    summed: str | None = None
    unit: str = "ratio"
    # SQL boolean: population items whose outcome is not decided yet at `t` (a feedback item
    # still within its answer deadline). Plan forecasts treat them as still to come.
    pending: str | None = None
    # Whether an item out of the numerator stays out for the rest of the period. False when it
    # can still get in (a dossier digitised later, an answer published later): a plan target is
    # then never declared missed before the period ends.
    final: bool = True
    # Which facts rows the population can lie in; set from the population below.
    reads: Reads = "finished"
    # Whether every item of the population finished before `t` (FINISHED, maybe narrowed by
    # more AND-ed conditions): such a figure is judged from the facts' end columns alone.
    finished_only: bool = False

    @property
    def reads_catalogue(self) -> bool:
        """Whether the figure asks the procedure catalogue (which procedures are eligible for
        full online service): only then does a request load it."""
        return "{full_online_eligible:" in f"{self.population} {self.numerator}"

    def numerator_sql(self) -> str:
        if self.summed is None:
            return f"countIf({self.numerator})"
        return f"toInt64(sumIf({self.summed}, {self.numerator}))"

    def weighted_numerator_sql(self) -> str:
        """The numerator over facts rows, each weighted by its `sign`."""
        if self.summed is None:
            return f"toInt64(sumIf(sign, {self.numerator}))"
        return f"toInt64(sumIf(sign * ({self.summed}), {self.numerator}))"


# Per-dossier conditions. `t` is the instant the figure is judged at: the period end, or now when
# the period has not ended, or the end of each bucket for stock figures.
RECEIVED = "received_at >= period_start AND received_at < period_end"
FINISHED = "end_at IS NOT NULL AND end_at >= period_start AND end_at < t AND due_at IS NOT NULL"
OPEN_AT_T = "received_at < t AND (end_at IS NULL OR end_at >= t) AND due_at IS NOT NULL"
PAID = "paid_at IS NOT NULL AND paid_at >= period_start AND paid_at < t"
FILED = "filed_at >= period_start AND filed_at < period_end AND deadline_day IS NOT NULL"
# The last local day the figure is judged on (t is an exclusive instant).
T_DAY = f"toDate(subtractMilliseconds(t, 1), '{TZ}')"
ANSWERED_IN_TIME = f"answered_at < t AND toDate(answered_at, '{TZ}') <= deadline_day"
ANSWERED_LATE = f"answered_at < t AND toDate(answered_at, '{TZ}') > deadline_day"
UNANSWERED = "(answered_at IS NULL OR answered_at >= t)"
LATE_AT_T = "timeliness = 'late'"
# A late dossier the apology rules judge (KH 7860 B.4.1): every one, or under a rule set whose
# apology population is the missed due dates (rules.Rules.apology_population) only one whose
# original due date passed (`due_missed`, queries._APOLOGY_JUDGED): the letter apologises for a
# missed date, so a dossier late only by a second supplement request has none to apologise for.
APOLOGY_DUE = f"{LATE_AT_T} AND ({{apology_missed_due_only:UInt8}} = 0 OR due_missed)"


DOSSIER_METRICS: tuple[Metric, ...] = (
    Metric(
        "on_time_rate",
        "Tỷ lệ hồ sơ giải quyết trước hạn, đúng hạn",
        "Hồ sơ đã giải quyết trong kỳ trước hạn hoặc đúng hạn / hồ sơ đã giải quyết trong kỳ "
        "(tạm dừng khi chờ bổ sung; bổ sung quá một lần tính là quá hạn).",
        "dossier",
        FINISHED,
        "timeliness IN ('early', 'on_time')",
        "end_at",
    ),
    Metric(
        "early_rate",
        "Tỷ lệ hồ sơ giải quyết trước hạn",
        "Hồ sơ đã giải quyết trong kỳ trước ngày hẹn trả / hồ sơ đã giải quyết trong kỳ.",
        "dossier",
        FINISHED,
        "timeliness = 'early'",
        "end_at",
    ),
    Metric(
        "late_rate",
        "Tỷ lệ hồ sơ giải quyết quá hạn",
        "Hồ sơ đã giải quyết trong kỳ sau thời hạn / hồ sơ đã giải quyết trong kỳ.",
        "dossier",
        FINISHED,
        "timeliness = 'late'",
        "end_at",
        target="lĩnh vực đất đai < 2%",
    ),
    Metric(
        "avg_processing_minutes",
        "Thời gian giải quyết trung bình (phút)",
        "Tổng thời gian giải quyết thực tế (từ tiếp nhận đến kết thúc, trừ thời gian chờ bổ sung, "
        "tính bằng phút) / số hồ sơ đã giải quyết trong kỳ; tỷ lệ là số phút trung bình.",
        "dossier",
        FINISHED,
        "1",
        "end_at",
        summed="greatest(0, dateDiff('minute', received_at, effective_at))",
        unit="minutes",
    ),
    Metric(
        "open_overdue_rate",
        "Tỷ lệ hồ sơ đang giải quyết quá hạn",
        "Hồ sơ chưa giải quyết xong tại cuối kỳ (hoặc lúc này) đã quá ngày hẹn trả / hồ sơ "
        "đang giải quyết. Quá hạn tính ngay khi vượt ngày hẹn, không chờ thông báo trễ hạn.",
        "dossier",
        OPEN_AT_T,
        "timeliness = 'late'",
        None,
    ),
    Metric(
        "open_within_deadline_rate",
        "Tỷ lệ hồ sơ đang giải quyết trong hạn",
        "Hồ sơ chưa giải quyết xong tại cuối kỳ còn trong hạn / hồ sơ đang giải quyết.",
        "dossier",
        OPEN_AT_T,
        "timeliness IN ('early', 'on_time')",
        None,
    ),
    Metric(
        "apology_compliance",
        "Tỷ lệ hồ sơ quá hạn có văn bản xin lỗi đúng quy định",
        "Hồ sơ đã quá ngày hẹn trả ban đầu (giải quyết xong sau ngày hẹn trong kỳ, hoặc đang giải "
        "quyết đã quá ngày hẹn) có văn bản xin lỗi, hẹn lại ngày trả ban hành chậm nhất 1 ngày "
        "làm việc trước ngày hẹn trả ban đầu và không hẹn lại quá một lần / hồ sơ đã quá ngày hẹn "
        "trả ban đầu (KH 7860 B.4.1). Hồ sơ chỉ bị tính quá hạn vì yêu cầu bổ sung quá một lần mà "
        "giải quyết trước ngày hẹn không có ngày hẹn bị lỡ nên không thuộc đối tượng (theo bộ quy "
        "tắc reference@1: mọi hồ sơ quá hạn).",
        "dossier",
        f"({FINISHED} OR {OPEN_AT_T}) AND {APOLOGY_DUE}",
        "apology_ok",
        None,
        target="100%",
    ),
    Metric(
        "due_soon_without_apology",
        "Hồ sơ sắp đến hạn chưa có văn bản xin lỗi",
        "Hồ sơ đang giải quyết chưa quá ngày hẹn trả, đến hạn trong số ngày làm việc của quy tắc "
        "(mặc định 3) mà chưa có văn bản xin lỗi / hồ sơ đang giải quyết chưa quá ngày hẹn trả: "
        "cảnh báo sớm, trước khi hồ sơ vào đối tượng của tỷ lệ xin lỗi đúng quy định (theo bộ "
        "quy tắc reference@1: hồ sơ đang giải quyết trong hạn).",
        "dossier",
        # the open dossiers not (yet) in apology compliance's population
        f"{OPEN_AT_T} AND NOT ({APOLOGY_DUE})",
        "due_day <= horizon_day AND apologies = 0",
        None,
    ),
    Metric(
        "online_share",
        "Tỷ lệ hồ sơ nộp trực tuyến",
        "Hồ sơ tiếp nhận trong kỳ qua kênh trực tuyến / hồ sơ tiếp nhận trong kỳ "
        "(766 chỉ tiêu 3.3).",
        "dossier",
        RECEIVED,
        "channel = 'online'",
        "received_at",
        target="≥ 30%",
    ),
    Metric(
        "direct_share",
        "Tỷ lệ hồ sơ nộp trực tiếp",
        "Hồ sơ tiếp nhận trong kỳ trực tiếp tại bộ phận một cửa / hồ sơ tiếp nhận trong kỳ.",
        "dossier",
        RECEIVED,
        "channel = 'direct'",
        "received_at",
    ),
    Metric(
        "postal_share",
        "Tỷ lệ hồ sơ nộp qua bưu chính công ích",
        "Hồ sơ tiếp nhận trong kỳ qua bưu chính công ích / hồ sơ tiếp nhận trong kỳ.",
        "dossier",
        RECEIVED,
        "channel = 'postal'",
        "received_at",
    ),
    Metric(
        "online_payment_share",
        "Tỷ lệ hồ sơ thanh toán trực tuyến",
        "Hồ sơ có khoản thanh toán trực tuyến / hồ sơ có thanh toán, "
        "theo ngày thanh toán đầu tiên.",
        "dossier",
        PAID,
        "paid_online = 1",
        "paid_at",
        target="≥ 30%",
    ),
    Metric(
        "digitized_share",
        "Tỷ lệ hồ sơ được số hóa",
        "Hồ sơ tiếp nhận trong kỳ đã được số hóa (đến cuối kỳ) / hồ sơ tiếp nhận trong kỳ.",
        "dossier",
        RECEIVED,
        "digitized_at IS NOT NULL AND digitized_at < t",
        "received_at",
        target="100%",
        final=False,
    ),
    Metric(
        "e_result_share",
        "Tỷ lệ hồ sơ có kết quả điện tử",
        "Hồ sơ đã giải quyết trong kỳ của TTHC yêu cầu kết quả bản giấy có cấp kết quả điện tử / "
        "hồ sơ đã giải quyết trong kỳ của các TTHC đó (766 chỉ tiêu 4.1).",
        "dossier",
        f"{FINISHED} AND paper_result_required = 1",
        "e_result = 1",
        "end_at",
    ),
    Metric(
        "full_online_share",
        "Tỷ lệ hồ sơ trực tuyến toàn trình",
        "Hồ sơ trực tuyến của TTHC đủ điều kiện toàn trình / hồ sơ tiếp nhận trong kỳ của các TTHC "
        "đủ điều kiện toàn trình (theo danh mục TTHC hiệu lực cuối kỳ).",
        "dossier",
        f"{RECEIVED} AND has({{full_online_eligible:Array(String)}}, procedure_code)",
        "channel = 'online'",
        "received_at",
    ),
)

FEEDBACK_METRICS: tuple[Metric, ...] = (
    Metric(
        "feedback_answered_on_time",
        "Tỷ lệ phản ánh, kiến nghị được trả lời đúng hạn",
        "PAKN tiếp nhận trong kỳ đã trả lời không muộn hơn thời hạn / PAKN tiếp nhận trong kỳ.",
        "feedback",
        FILED,
        ANSWERED_IN_TIME,
        "filed_at",
        target="100%",
        pending=f"{UNANSWERED} AND {T_DAY} <= deadline_day",
    ),
    Metric(
        "feedback_answered_late",
        "Tỷ lệ phản ánh, kiến nghị trả lời quá hạn",
        "PAKN tiếp nhận trong kỳ đã trả lời sau thời hạn / PAKN tiếp nhận trong kỳ.",
        "feedback",
        FILED,
        ANSWERED_LATE,
        "filed_at",
    ),
    Metric(
        "feedback_open",
        "Tỷ lệ phản ánh, kiến nghị chưa trả lời",
        "PAKN tiếp nhận trong kỳ chưa được trả lời tại cuối kỳ / PAKN tiếp nhận trong kỳ.",
        "feedback",
        FILED,
        UNANSWERED,
        "filed_at",
    ),
    Metric(
        "feedback_open_overdue",
        "Tỷ lệ phản ánh, kiến nghị chưa trả lời đã quá hạn",
        "PAKN chưa trả lời tại cuối kỳ và đã quá thời hạn trả lời / PAKN tiếp nhận trong kỳ.",
        "feedback",
        FILED,
        f"{UNANSWERED} AND {T_DAY} > deadline_day",
        "filed_at",
    ),
    Metric(
        "feedback_published_share",
        "Tỷ lệ kết quả trả lời phản ánh, kiến nghị được công khai",
        "PAKN đã trả lời và đã công khai đến cuối kỳ / PAKN tiếp nhận trong kỳ đã trả lời.",
        "feedback",
        f"{FILED} AND answered_at < t",
        "published_at < t",
        "filed_at",
        target="100%",
        final=False,
    ),
)

_READS: dict[str, Reads] = {
    FINISHED: "finished",
    OPEN_AT_T: "open",
    RECEIVED: "received",
    PAID: "paid",
    FILED: "filed",
}


def _reads(metric: Metric) -> Metric:
    """Which rows the population reads: the anchor its population is built on."""
    population = metric.population
    if FINISHED in population and OPEN_AT_T in population:
        reads: Reads = "finished_or_open"
    else:
        reads = next(r for anchor, r in _READS.items() if anchor in population)
    narrowed = population.startswith(f"{FINISHED} AND ") and " OR " not in population.upper()
    return replace(metric, reads=reads, finished_only=population == FINISHED or narrowed)


METRICS: dict[str, Metric] = {m.id: m for m in map(_reads, (*DOSSIER_METRICS, *FEEDBACK_METRICS))}
