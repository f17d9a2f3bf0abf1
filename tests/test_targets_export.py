"""GET /v1/targets?format=csv|xlsx: the targets' latest statuses as the sheet the provincial
office attaches to its report, the same rows as the JSON answer, in the page's words."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import httpx
from clickhouse_connect.driver.client import Client
from openpyxl import load_workbook

from core.plans import load_plans
from core.plans.status import STATUS_COLUMNS
from services.api.targets_table import HEADINGS, NOT_EVALUATED, rows
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
    agency_at, status_at = HEADINGS.index("Cơ quan"), HEADINGS.index("Trạng thái")
    mine = dict(zip(HEADINGS, next(r for r in body if r[agency_at] == a), strict=True))
    assert mine["Mục tiêu"].startswith("100% phản ánh, kiến nghị được xử lý")
    assert (mine["Yêu cầu"], mine["Kỳ"], mine["Tử số"], mine["Mẫu số"]) == (
        "≥ 100%",
        "Năm 2022",
        "9",
        "10",
    )
    assert (mine["Giá trị"], mine["Trạng thái"]) == ("90,00%", "Không đạt")  # the latest
    assert mine["Đánh giá lúc"] == "02/01/2023 07:00"  # Vietnamese time
    assert mine["Tên cơ quan"] == ""  # a test code, in no org tree
    assert sum(r[status_at] == NOT_EVALUATED for r in body) == len(body) - 1

    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=3)]
    assert tuple(cells[0]) == HEADINGS
    as_text = [["" if v is None else str(v) for v in row] for row in cells[1:]]
    assert as_text == body


def test_an_agency_is_named_as_the_org_tree_of_its_period_named_it() -> None:
    # Catches: a 2022 row named after today's unit (the 1/7/2025 restructuring renamed many).
    plan = load_plans()[PLAN]
    target = next(t for t in plan.targets if t.id == "A.IV.7-feedback-answered")
    status = {
        "agency_code": "UBND_CAMRANH",
        "period": {"from": date(2022, 1, 1), "to": date(2022, 12, 31)},
        "numerator": 9,
        "denominator": 10,
        "value": 0.9,
        "status_label": "Không đạt",
        "forecast": {"value": None},
        "budget": None,
        "needed": 1,
        "needed_per_working_day": 0.04,
        "evaluated_at": datetime(2023, 1, 2, tzinfo=UTC),
    }
    asked: list[tuple[str, date]] = []

    def name_of(code: str, day: date) -> str:
        asked.append((code, day))
        return "UBND thành phố Cam Ranh"

    (row,) = rows([(plan, target, [status])], name_of)
    assert asked == [("UBND_CAMRANH", date(2022, 12, 31))]
    shown = dict(zip(HEADINGS, row, strict=True))
    assert shown["Tên cơ quan"] == "UBND thành phố Cam Ranh"
    assert (shown["Giá trị"], shown["Cần mỗi ngày làm việc"]) == ("90,00%", 0.04)
