"""One board per topic of the plan: online submission and payment, digitisation, feedback,
apology compliance. Same shape each: the figures, their monthly trend, per agency, the targets."""

from __future__ import annotations

from collections.abc import Sequence

from tools.grafana.api_panels import (
    by_agency,
    completeness_stat,
    freshness,
    metric_count_stat,
    metric_stat,
    monthly_trend,
)
from tools.grafana.model import Dashboard, Panel
from tools.grafana.panels import intake_by_channel, intake_by_level, metric_ids, targets_table
from tools.grafana.sql import quoted
from tools.grafana.variables import ALL_VARIABLES


def _topic(
    uid: str, title: str, description: str, metrics: Sequence[str], extra: Sequence[Panel] = ()
) -> Dashboard:
    width = max(4, 24 // len(metrics))
    return Dashboard(
        uid,
        title,
        description,
        (
            freshness(),
            completeness_stat(),
            *(metric_stat(m, width=width) for m in metrics),
            monthly_trend(metrics, "Diễn biến theo tháng", width=24),
            by_agency(metrics, "Theo cơ quan"),
            targets_table("Mục tiêu kế hoạch liên quan", f"metric IN ({quoted(metrics)})"),
            *extra,
        ),
        ALL_VARIABLES,
    )


def online() -> Dashboard:
    return _topic(
        "motcua-online",
        "Nộp hồ sơ và thanh toán trực tuyến",
        "KH 7860 A.VIII.7: hồ sơ trực tuyến ≥ 30%, thanh toán trực tuyến ≥ 30%; tỷ lệ toàn trình "
        "và cơ cấu kênh nộp.",
        metric_ids("online_share", "full_online_share", "online_payment_share", "direct_share"),
        (
            intake_by_channel("Hồ sơ tiếp nhận theo kênh"),
            intake_by_level("Hồ sơ tiếp nhận theo cấp"),
        ),
    )


def digitisation() -> Dashboard:
    return _topic(
        "motcua-digitisation",
        "Số hóa hồ sơ và kết quả điện tử",
        "KH 7860 A.VIII.8: 100% hồ sơ được số hóa; QĐ 766 chỉ tiêu 4.1 và 4.2.",
        metric_ids("digitized_share", "e_result_share"),
    )


def feedback() -> Dashboard:
    return _topic(
        "motcua-feedback",
        "Phản ánh, kiến nghị",
        "KH 7860 A.IV.7, B.5.2, B.5.3: 100% phản ánh, kiến nghị được trả lời đúng hạn và "
        "công khai.",
        metric_ids(
            "feedback_answered_on_time",
            "feedback_answered_late",
            "feedback_open_overdue",
            "feedback_published_share",
        ),
    )


def apology() -> Dashboard:
    return _topic(
        "motcua-apology",
        "Xin lỗi khi trễ hạn",
        "KH 7860 B.4.1: mọi hồ sơ trễ hạn đều có văn bản xin lỗi đúng hạn; chỉ báo sớm: hồ sơ sắp "
        "đến hạn chưa có văn bản xin lỗi.",
        metric_ids("apology_compliance", "due_soon_without_apology"),
        (
            metric_count_stat(
                "due_soon_without_apology", "Số hồ sơ sắp đến hạn chưa xin lỗi", width=6
            ),
            metric_count_stat("open_overdue_rate", "Số hồ sơ đang quá hạn", width=6),
        ),
    )
