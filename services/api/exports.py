"""Tables as CSV (UTF-8 with BOM, so Excel shows Vietnamese correctly) and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font


def to_csv(headings: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headings)
    writer.writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(
    sheet_name: str,
    title: str,
    subtitle: str,
    headings: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_name[:31]  # Excel forbids / \ ? * [ ] : in sheet names
    sheet.append([title])
    sheet.append([subtitle])
    sheet.append(list(headings))
    for cell in sheet[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet["A1"].font = Font(bold=True, size=13)
    for row in rows:
        sheet.append(list(row))
    for column in sheet.columns:
        letter = column[0].column_letter
        sheet.column_dimensions[letter].width = 16 if letter != "A" else 30
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
