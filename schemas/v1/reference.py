"""Dữ liệu danh mục v1: cơ quan (cây tổ chức) và thủ tục hành chính, gửi như sự kiện.

Reference data, as events: the org tree and the procedure catalogue change by decision (the
1/7/2025 restructuring abolished the districts), so every record is a version valid over
[valid_from, valid_to). A new valid_from for the same code is a new version; the same
(code, valid_from) published again replaces the earlier one (the latest ingested wins). Same rules
as events.py: unknown fields are refused, times carry an offset, and a breaking change is a new
version of the contract, never an edit.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from schemas.v1.events import Code, Level, ProcedureCode, Timestamp

# ClickHouse stores these as Date32 (1900-01-01 … 2299-12-31): refuse what it could not store.
CatalogDate = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2299, 12, 31))]
Name = Annotated[str, Field(min_length=1, max_length=500)]


class ProcessingUnit(StrEnum):
    """Đơn vị thời hạn giải quyết: ngày làm việc hoặc ngày (lịch)."""

    working_day = "working_day"
    calendar_day = "calendar_day"


class OnlineLevel(StrEnum):
    """Mức độ dịch vụ công trực tuyến (NĐ 42/2022): toàn trình, một phần, không cung cấp."""

    full = "full"
    partial = "partial"
    none = "none"


class ReferenceEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(
        description="Khóa chống trùng; cũng gửi trong header Nats-Msg-Id. / Idempotency key."
    )
    schema_version: Literal[1] = Field(description="Phiên bản hợp đồng dữ liệu (1).")
    occurred_at: Timestamp = Field(
        description="Thời điểm bản ghi được ban hành trong hệ thống nguồn (ISO 8601, có múi giờ)."
    )
    source: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="Hệ thống gửi, ví dụ 'csdl-tthc-khanhhoa' hoặc 'catalog-file:<tệp>'."
    )
    valid_from: CatalogDate = Field(description="Hiệu lực từ ngày (tính cả ngày này).")
    valid_to: CatalogDate | None = Field(
        description="Hết hiệu lực từ ngày (không tính ngày này); null: còn hiệu lực."
    )

    @model_validator(mode="after")
    def _valid_period(self) -> ReferenceEnvelope:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from (the period is [from, to))")
        return self


class AgencyReference(ReferenceEnvelope):
    """Một phiên bản của một cơ quan trong cây tổ chức (tỉnh, sở, huyện, xã).

    Tỉnh là gốc (cấp tỉnh, không có cơ quan cấp trên); các sở là cấp tỉnh với cơ quan cấp trên là
    chính tỉnh; huyện thuộc tỉnh; xã thuộc huyện, hoặc thuộc thẳng tỉnh từ 1/7/2025.
    """

    type: Literal["reference.agency"]
    agency_code: Code = Field(
        description="Mã cơ quan, dùng trong subject; phải trùng mã trong subject."
    )
    name: Name = Field(description="Tên cơ quan, ví dụ 'UBND xã Vĩnh Lương'.")
    level: Level = Field(description="Cấp: province (tỉnh, sở), district (huyện), commune (xã).")
    parent_code: Code | None = Field(
        description="Mã cơ quan cấp trên; null chỉ với gốc của cây (tỉnh)."
    )

    @model_validator(mode="after")
    def _parent(self) -> AgencyReference:
        if self.parent_code == self.agency_code:
            raise ValueError("parent_code must differ from agency_code")
        if self.parent_code is None and self.level is not Level.province:
            raise ValueError("only the province (the root) has no parent_code")
        return self


class ProcedureReference(ReferenceEnvelope):
    """Một phiên bản của một thủ tục hành chính (TTHC) trong danh mục đã công bố."""

    type: Literal["reference.procedure"]
    procedure_code: ProcedureCode = Field(
        description="Mã TTHC trong CSDL quốc gia, ví dụ 1.004227; dấu chấm thành '_' trong subject."
    )
    name: Name = Field(description="Tên thủ tục hành chính.")
    domain_code: Code = Field(description="Lĩnh vực, ví dụ dat_dai, ho_tich.")
    processing_days: Annotated[int, Field(ge=0, le=3650)] = Field(
        description="Thời hạn giải quyết, theo processing_unit."
    )
    processing_unit: ProcessingUnit = Field(
        description="working_day: ngày làm việc; calendar_day: ngày."
    )
    fee_bearing: bool = Field(description="Có phí, lệ phí (nghĩa vụ tài chính).")
    paper_result_required: bool = Field(description="Kết quả phải cấp bản giấy.")
    online_level: OnlineLevel = Field(
        description="DVCTT: full toàn trình, partial một phần, none không cung cấp."
    )
    full_online_eligible: bool = Field(description="Đủ điều kiện cung cấp DVCTT toàn trình.")
    online_payment_integrated: bool = Field(description="Đã tích hợp thanh toán trực tuyến.")
    levels: Annotated[list[Level], Field(min_length=1, max_length=3)] = Field(
        description="Các cấp thực hiện: province, district, commune."
    )
    decision_date: CatalogDate = Field(description="Ngày quyết định công bố TTHC.")
    legal_basis_effective_date: CatalogDate = Field(
        description="Ngày văn bản quy phạm pháp luật quy định TTHC có hiệu lực."
    )
    public_in_national_db_at: CatalogDate | None = Field(
        description="Ngày công khai trên CSDL quốc gia về TTHC; null: chưa công khai."
    )
    parts_complete: bool = Field(description="Công khai đầy đủ 7 bộ phận cấu thành TTHC.")

    @model_validator(mode="after")
    def _distinct_levels(self) -> ProcedureReference:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError("levels must not repeat")
        return self


ReferenceEvent = Annotated[AgencyReference | ProcedureReference, Field(discriminator="type")]
REFERENCE_ADAPTER: TypeAdapter[ReferenceEvent] = TypeAdapter(ReferenceEvent)

AGENCY_TYPE = "reference.agency"
PROCEDURE_TYPE = "reference.procedure"
REFERENCE_TYPES: dict[str, type[ReferenceEnvelope]] = {
    AGENCY_TYPE: AgencyReference,
    PROCEDURE_TYPE: ProcedureReference,
}
# Vietnamese first (the official term), English second; for the exported JSON Schema.
REFERENCE_LABELS: dict[str, tuple[str, str]] = {
    AGENCY_TYPE: ("Danh mục cơ quan", "Agency (org tree) version"),
    PROCEDURE_TYPE: ("Danh mục thủ tục hành chính", "Procedure catalogue version"),
}


def reference_code(event: ReferenceEvent) -> str:
    """The record's code: agency_code or procedure_code."""
    if isinstance(event, AgencyReference):
        return event.agency_code
    return event.procedure_code


def parse_reference(data: bytes | str) -> ReferenceEvent:
    """Validate one JSON payload, strictly (schemas/v1/events.parse_event); raises
    pydantic.ValidationError."""
    return REFERENCE_ADAPTER.validate_json(data, strict=True)
