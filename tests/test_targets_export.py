"""GET /v1/targets?format=csv|xlsx: the targets' latest statuses as the sheet the provincial
office attaches to its report, the same rows as the JSON answer, in the page's words."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
from clickhouse_connect.driver.client import Client
from openpyxl import load_workbook

from services.api.targets_table import HEADINGS, NOT_EVALUATED
from services.plans.status import STATUS_COLUMNS
from tests.test_page import _status_row, on_session_loop

PLAN = "kh-7860-2022@1"


@on_session_loop
async def test_targets_as_csv_and_xlsx(system: Any, clickhouse: Client, agency: str) -> None:
    # Catches: a sheet that drops targets without an evaluation, shows an older evaluation than
    # the API, loses the Vietnamese (CSV without BOM), or disagrees between CSV and XLSX.
    a = agency
    clickhouse.insert(
        "target_status",
        [
            _status_row(a, "at_risk", 0.95, datetime(2022, 11, 1, tzinfo=UTC)),
            _status_row(a, "missed", 0.9, datetime(2023, 1, 2, tzinfo=UTC)),
        ],
        column_names=list(STATUS_COLUMNS),
    )
    params = {"plan": PLAN, "agency": a}
    async with httpx.AsyncClient(
        base_url=system.api_url, headers=system.api_headers, timeout=60
    ) as http:
        as_json = (await http.get("/v1/targets", params=params)).json()
        as_csv = await http.get("/v1/targets", params={**params, "format": "csv"})
        as_xlsx = await http.get("/v1/targets", params={**params, "format": "xlsx"})
    assert as_csv.status_code == as_xlsx.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    assert "attachment" in as_xlsx.headers["content-disposition"]

    table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert tuple(table[0]) == HEADINGS
    body = table[1:]
    # One row per target of the plan: its statuses, or one saying there is none yet.
    assert len(body) == len(as_json["targets"])
    assert [r[1] for r in body] == [t["clause"] for t in as_json["targets"]]
    mine = dict(zip(HEADINGS, next(r for r in body if r[6] == a), strict=True))
    assert mine["Mục tiêu"].startswith("100% phản ánh, kiến nghị được xử lý")
    assert (mine["Yêu cầu"], mine["Kỳ"], mine["Tử số"], mine["Mẫu số"]) == (
        "≥ 100%",
        "Năm 2022",
        "9",
        "10",
    )
    assert (mine["Giá trị"], mine["Trạng thái"]) == ("90,0%", "Không đạt")  # the latest
    assert mine["Đánh giá lúc"] == "02/01/2023 07:00"  # Vietnamese time
    assert sum(r[11] == NOT_EVALUATED for r in body) == len(body) - 1

    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert tuple(cells[0]) == HEADINGS
    as_text = [["" if v is None else str(v) for v in row] for row in cells[1:]]
    assert as_text == body
