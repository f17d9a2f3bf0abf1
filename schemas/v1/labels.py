"""A bilingual name for every event type of contract v1, for the exported JSON Schema and AsyncAPI.

Vietnamese first (the official term), English second. A test ties these keys to EVENT_TYPES.
"""

from __future__ import annotations

from schemas.v1.events import EVENT_TYPES

EVENT_LABELS: dict[str, tuple[str, str]] = {
    "dossier.received": ("Tiếp nhận hồ sơ", "Dossier received"),
    "dossier.supplement_requested": ("Yêu cầu bổ sung hồ sơ", "Supplement requested"),
    "dossier.supplement_received": ("Nhận hồ sơ bổ sung", "Supplement received"),
    "dossier.resolved": ("Giải quyết xong hồ sơ", "Dossier resolved"),
    "dossier.returned": ("Trả kết quả", "Result returned"),
    "dossier.late": ("Hồ sơ quá hạn", "Dossier late"),
    "dossier.apology_issued": ("Văn bản xin lỗi, hẹn lại ngày trả", "Apology issued"),
    "dossier.withdrawn": ("Rút hồ sơ", "Dossier withdrawn"),
    "dossier.paid": ("Nộp phí, lệ phí", "Fee paid"),
    "dossier.digitized": ("Số hóa hồ sơ", "Dossier digitised"),
    "dossier.rated": ("Đánh giá giải quyết hồ sơ", "Dossier rated"),
    "feedback.filed": ("Tiếp nhận phản ánh, kiến nghị", "Feedback filed"),
    "feedback.answered": ("Trả lời phản ánh, kiến nghị", "Feedback answered"),
    "feedback.published": ("Công khai trả lời phản ánh, kiến nghị", "Answer published"),
    "feedback.rated": ("Đánh giá trả lời phản ánh, kiến nghị", "Feedback rated"),
    "manifest.daily": ("Bảng kê cuối ngày của hệ thống nguồn", "Daily source manifest"),
}


def describe(event_type: str) -> str:
    """'<vi> / <en>. <model docstring>': one description shared by JSON Schema and AsyncAPI."""
    vi, en = EVENT_LABELS[event_type]
    doc = " ".join((EVENT_TYPES[event_type].__doc__ or "").split())
    return f"{vi} / {en}. {doc}".strip()
