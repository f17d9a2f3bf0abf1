"""Tables as CSV (UTF-8 with BOM, so Excel shows Vietnamese correctly) and XLSX.

Text that integrators sent (dossier ids, codes, names) reaches these files; a cell starting with
= + - @ or a tab or carriage return would run as a formula when an auditor opens the file in
Excel or LibreOffice (CSV/formula injection, OWASP). Such text gets a leading apostrophe, which
spreadsheets show as plain text; numbers are left alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi import Response
from fastapi.responses import StreamingResponse
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A route's `responses=` for format=csv|xlsx: documented, so clients (and schemathesis) expect them.
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}
SHEET_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, XLSX_TYPE: {}}}
}


def as_text(value: Any) -> Any:
    """The value, with text that a spreadsheet would take for a formula made plain text."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _safe(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[as_text(v) for v in row] for row in rows]


def to_csv(headings: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    return csv_piece([headings, *rows], first=True)


def csv_piece(rows: Iterable[Sequence[Any]], first: bool = False) -> bytes:
    """Rows of a CSV, made safe for a spreadsheet: a whole file (to_csv) or a piece of a
    streamed one; the `first` piece carries the BOM."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(_safe(list(rows)))
    return (("\ufeff" if first else "") + buffer.getvalue()).encode("utf-8")


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
    sheet.append([as_text(h) for h in headings])
    for cell in sheet[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet["A1"].font = Font(bold=True, size=13)
    for row in _safe(rows):
        sheet.append(row)
    for column in sheet.columns:
        letter = column[0].column_letter
        sheet.column_dimensions[letter].width = 16 if letter != "A" else 30
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_response(stem: str, headings: Sequence[str], rows: Sequence[Sequence[Any]]) -> Response:
    """`rows` as a CSV download named `stem`.csv."""
    return Response(
        to_csv(headings, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )


def csv_stream_response(stem: str, pieces: Iterator[bytes]) -> StreamingResponse:
    """A CSV download named `stem`.csv sent as `pieces` come (csv_piece): a blocking iterator,
    run on a worker thread piece by piece."""
    return StreamingResponse(
        pieces,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
    )


def xlsx_response(
    stem: str,
    sheet_name: str,
    title: str,
    subtitle: str,
    headings: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> Response:
    """`rows` as an XLSX download named `stem`.xlsx (see to_xlsx)."""
    return Response(
        to_xlsx(sheet_name, title, subtitle, headings, rows),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'},
    )
