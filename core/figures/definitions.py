"""The metric catalogue: every figure as a population and a numerator over one row per item.

One definition serves the API (on demand), the metrics service (continuous snapshots) and the
Grafana boards, so the same question gets the same number everywhere. Each figure is stored and
returned as numerator and denominator; the rate is derived at read time.
"""

from __future__ import annotations

from dataclasses import replace

from core.figures.metric_model import (
    ANSWERED_IN_TIME,
    ANSWERED_LATE,
    APOLOGY_DUE,
    FILED,
    FINISHED,
    OPEN_AT_T,
    PAID,
    RECEIVED,
    T_DAY,
    UNANSWERED,
    Metric,
    Reads,
)

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
