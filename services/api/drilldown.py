"""The drill-down's answer (GET /v1/metrics/{metric}/items): a page of items as JSON, with the
total, or every item as one CSV streamed in chunks (issue 15: the CSV used to hold the first page
only, with nothing in the file saying so)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, Literal

from clickhouse_connect.driver.client import Client
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from core.figures.metric_query import MetricQuery
from core.storage.pool import Abandoned
from services.api.exports import csv_piece, csv_stream_response

Part = Literal["numerator", "denominator"]

ItemTimeliness = Literal["early", "on_time", "late", "within", "overdue"]
# For people (the CSV, a screen): finished dossiers as Biểu II.06a's columns 8-10 name them, open
# ones as its columns 12-13.
TIMELINESS_LABELS: dict[str, str] = {
    "early": "Đã giải quyết - Trước hạn",
    "on_time": "Đã giải quyết - Đúng hạn",
    "late": "Đã giải quyết - Quá hạn",
    "within": "Đang giải quyết - Trong hạn",
    "overdue": "Đang giải quyết - Quá hạn",
}

TIMELINESS_DESCRIPTION = (
    "Judged at `judged_at`. A dossier finished by then: `early`, `on_time` or `late` (§2, at its "
    "end). One still open then: `within` (trong hạn) or `overdue` (quá hạn), as Biểu II.06a "
    "counts open dossiers. null: the dossier has no due date."
)


class DossierItem(BaseModel):
    agency_code: str
    dossier_id: str
    domain_code: str | None
    level: str | None
    channel: str | None
    received_at: datetime | None
    due_at: datetime | None
    end_at: datetime | None = Field(description="Resolved, returned or withdrawn")
    effective_at: datetime | None = Field(
        description="The instant its clock shows at its end, or at `judged_at` while open "
        "(supplement pauses taken out)"
    )
    supplements: int = Field(description="Supplement requests by then")
    timeliness: ItemTimeliness | None = Field(description=TIMELINESS_DESCRIPTION)
    timeliness_label: str | None = Field(
        description="`timeliness` in Vietnamese: " + "; ".join(TIMELINESS_LABELS.values())
    )
    event_count: int


class FeedbackItem(BaseModel):
    agency_code: str
    feedback_id: str
    topic: str | None
    filed_at: datetime | None
    due_at: datetime | None
    answered_at: datetime | None
    published_at: datetime | None
    event_count: int


class ItemsPage(BaseModel):
    metric: str
    part: Part
    period_from: date
    period_to: date
    judged_at: datetime
    total: int = Field(description="Items behind the figure, on every page")
    page: int
    page_size: int
    items: list[DossierItem] | list[FeedbackItem]


def labelled(row: dict[str, Any]) -> dict[str, Any]:
    """A dossier item with its timeliness label next to its timeliness (a feedback item as is)."""
    if "timeliness" not in row:
        return row
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value
        if key == "timeliness":
            out["timeliness_label"] = TIMELINESS_LABELS.get(value) if value else None
    return out


def truncation_note(max_rows: int) -> str:
    """The file's last line when the list holds more than `max_rows` items."""
    shown = f"{max_rows:,}".replace(",", ".")  # Vietnamese thousands
    return (
        f"# Tệp đã bị cắt: chỉ có {shown} dòng đầu tiên, danh sách còn nhiều hơn (giới hạn "
        "MOTCUA_API_EXPORT_MAX_ROWS). Hãy thu hẹp bộ lọc (agency, from, to) hoặc đọc bản JSON "
        f"theo trang. / Truncated: the first {max_rows} rows only, the list has more; narrow "
        "the filters or page through the JSON."
    )


def _pieces(
    query: MetricQuery, client: Client, part: Part, chunk: int, max_rows: int
) -> Iterator[bytes]:
    model = DossierItem if query.metric.entity == "dossier" else FeedbackItem
    headings = list(model.model_fields)
    yield csv_piece([headings], first=True)
    written = 0
    try:
        # One row past the limit tells whether the list goes on.
        for rows in query.item_chunks(client, part, chunk, max_rows + 1):
            kept = rows[: max_rows - written]
            yield csv_piece([[labelled(r).get(h) for h in headings] for r in kept])
            written += len(kept)
            if len(kept) < len(rows):
                yield csv_piece([[truncation_note(max_rows)]])
                return
    except Abandoned:
        return  # the client has gone: nobody reads the rest, so none of it is read


def csv_items(
    query: MetricQuery, client: Client, part: Part, *, chunk: int, max_rows: int
) -> StreamingResponse:
    """Every item behind the figure as CSV, read and sent `chunk` rows at a time (memory holds
    one chunk), at most `max_rows` of them and then a last line saying the file was cut.

    The request keeps its admission slot while it streams. Its client going away stops the
    reads: the stream is cancelled at the next chunk, and a chunk that starts after that is
    refused (core/storage/pool.py, Abandoned). A query failing halfway closes the
    connection without the end of the chunked body, so no client takes the file as whole."""
    stem = f"{query.metric.id}_{part}"
    return csv_stream_response(stem, _pieces(query, client, part, chunk, max_rows))
