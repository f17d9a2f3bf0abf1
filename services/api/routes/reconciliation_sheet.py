"""GET /v1/reconciliation as a sheet (format=csv|xlsx): every row and a total line, with the
Vietnamese headings the audit file is read with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.figures.audit import SUMMED
from core.figures.periods import Period
from core.zone import VN
from services.api.exports import csv_response, xlsx_response
from services.api.schemas import ReconciliationDay, ReconciliationTotals

TITLE = "Đối soát số liệu với hệ thống một cửa nguồn (bảng kê cuối ngày)"

# (heading, field) of the sheet, in order; Vietnamese, as the audit file is read.
SHEET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Mã cơ quan", "agency_code"),
    ("Cơ quan", "agency_name"),
    ("Ngày", "day"),
    ("Kết quả đối soát", "status_label"),
    ("Mã kết quả", "status"),
    ("Hồ sơ tiếp nhận - Nguồn báo cáo", "reported_received"),
    ("Hồ sơ tiếp nhận - motcua lưu", "stored_received"),
    ("Hồ sơ nguồn báo cáo mà motcua có", "held_received"),
    ("Hồ sơ thiếu trong motcua", "missing"),
    ("Hồ sơ thừa trong motcua", "extra"),
    ("Hồ sơ kết thúc xử lý - Nguồn báo cáo", "reported_finished"),
    ("Hồ sơ kết thúc xử lý - motcua lưu", "stored_finished"),
    ("Hồ sơ còn mở cuối ngày - Nguồn báo cáo", "reported_open"),
    ("Hồ sơ còn mở cuối ngày - motcua lưu", "stored_open"),
    ("Phản ánh kiến nghị tiếp nhận - Nguồn báo cáo", "reported_feedback_filed"),
    ("Phản ánh kiến nghị tiếp nhận - motcua lưu", "stored_feedback_filed"),
    ("Phản ánh kiến nghị đã trả lời - Nguồn báo cáo", "reported_feedback_answered"),
    ("Phản ánh kiến nghị đã trả lời - motcua lưu", "stored_feedback_answered"),
    ("Bảng kê liệt kê mã hồ sơ", "has_ids"),
    ("Hệ thống nguồn", "source"),
    ("Thời điểm lập bảng kê", "manifest_at"),
    ("Thời điểm đối soát", "judged_at"),
)


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, datetime):
        # local time, as the audit reads it; a text cell, since XLSX keeps no time zone
        return value.astimezone(VN).isoformat(timespec="seconds")
    return value


def sheet(
    format: str,
    period: Period,
    at: datetime,
    as_of: datetime | None,
    days: list[ReconciliationDay],
    totals: ReconciliationTotals,
) -> Any:
    headings = [h for h, _ in SHEET_COLUMNS]
    table = [[_cell(getattr(d, f)) for _, f in SHEET_COLUMNS] for d in days]
    summed = totals.model_dump()
    table.append(
        [
            "Tổng cộng" if f == "agency_name" else summed.get(f, "") if f in SUMMED else ""
            for _, f in SHEET_COLUMNS
        ]
    )
    first, last = period.first_day, period.last_day
    name = f"doi_soat_{first:%Y%m%d}_{last:%Y%m%d}"
    if format == "csv":
        return csv_response(name, headings, table)
    judged = "mới nhất" if as_of is None else f"đến {_cell(at)}"
    subtitle = f"Kỳ: {first:%d/%m/%Y} – {last:%d/%m/%Y}; kết quả đối soát {judged}"
    return xlsx_response(name, "Đối soát", TITLE, subtitle, headings, table)
