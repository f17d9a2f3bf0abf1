"""Event contract v1: what integrators of the one-stop systems publish.

The contract carries no personal data: no citizen names, ID numbers, addresses or contacts.
Every model forbids fields it does not define, so a typo is refused loudly instead of silently
dropped, and nothing outside the contract is ever stored. A breaking change is a new version
(schemas/v2), never an edit of this file.

(Over 300 lines on purpose: the whole v1 contract in one file, so an integrator reads every event
beside the others, and the JSON Schema, examples and AsyncAPI are generated from this one place.)
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

SCHEMA_VERSION = 1

# A subject token: no dots, spaces or wildcards, so motcua.events.<agency_code>.<type> is
# unambiguous.
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
EntityId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_./:-]+$")]
# Mã TTHC as in the national procedure database: dotted, e.g. 1.001193 (or 1.001193.000.00.00.H34
# for a local variant). Never a subject token, so dots are allowed.
ProcedureCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Timestamp = AwareDatetime  # a naive time is ambiguous across the province's systems: refused


class Level(StrEnum):
    province = "province"
    district = "district"
    commune = "commune"


class Channel(StrEnum):
    """Kênh nộp hồ sơ: 1 trực tiếp, 2 trực tuyến, 3 bưu chính công ích."""

    online = "online"
    direct = "direct"
    postal = "postal"


class PaymentChannel(StrEnum):
    online = "online"
    offline = "offline"


class Outcome(StrEnum):
    approved = "approved"
    rejected = "rejected"


class Rating(StrEnum):
    satisfied = "satisfied"
    neutral = "neutral"
    unsatisfied = "unsatisfied"


class FeedbackTopic(StrEnum):
    procedure = "procedure"
    official = "official"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Idempotency key; also sent as the Nats-Msg-Id header.")
    schema_version: Literal[1] = Field(description="Contract version; this file is version 1.")
    occurred_at: Timestamp = Field(
        description="When it happened in the source system (ISO 8601 with offset)."
    )
    agency_code: Code = Field(
        description="Agency handling the item; must equal the subject's agency token."
    )
    source: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="The publishing system, e.g. 'motcua-khanhhoa'."
    )


class DossierEvent(Envelope):
    dossier_id: EntityId = Field(description="Mã hồ sơ: the dossier code printed on the receipt.")


class FeedbackEvent(Envelope):
    feedback_id: EntityId = Field(description="Mã phản ánh, kiến nghị.")


class DossierReceived(DossierEvent):
    """Hồ sơ được tiếp nhận (status 2)."""

    type: Literal["dossier.received"]
    procedure_code: ProcedureCode = Field(
        description="Mã TTHC in the national procedure database, e.g. 1.001193."
    )
    domain_code: Code = Field(
        description="Lĩnh vực, e.g. dat_dai, ho_tich, xay_dung, dang_ky_kinh_doanh."
    )
    level: Level
    channel: Channel
    received_at: Timestamp
    due_at: Timestamp = Field(description="Ngày hẹn trả: the promised return date on the receipt.")
    fee_required: bool = Field(
        description="The procedure charges a fee or charge for this dossier."
    )
    paper_result_required: bool = Field(description="The result must also be issued on paper.")


class DossierSupplementRequested(DossierEvent):
    """Yêu cầu bổ sung giấy tờ (status 5): the deadline clock pauses."""

    type: Literal["dossier.supplement_requested"]


class DossierSupplementReceived(DossierEvent):
    """The citizen resubmitted the supplement: the deadline clock resumes."""

    type: Literal["dossier.supplement_received"]


class DossierResolved(DossierEvent):
    """Đã xử lý xong (status 9)."""

    type: Literal["dossier.resolved"]
    outcome: Outcome
    e_result: bool = Field(description="An electronic result (kết quả điện tử) was issued.")


class DossierReturned(DossierEvent):
    """Đã trả kết quả (status 10)."""

    type: Literal["dossier.returned"]


class DossierLate(DossierEvent):
    """The source system's own notice that the dossier passed its due date."""

    type: Literal["dossier.late"]


class DossierApologyIssued(DossierEvent):
    """Văn bản xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04)."""

    type: Literal["dossier.apology_issued"]
    new_due_at: Timestamp


class DossierWithdrawn(DossierEvent):
    """Công dân yêu cầu rút hồ sơ (status 7)."""

    type: Literal["dossier.withdrawn"]


class DossierPaid(DossierEvent):
    """A fee or charge was paid."""

    type: Literal["dossier.paid"]
    channel: PaymentChannel
    amount_vnd: Annotated[int, Field(ge=0, le=10**13)]


class DossierDigitized(DossierEvent):
    """The dossier's components were digitised (số hóa)."""

    type: Literal["dossier.digitized"]


class DossierRated(DossierEvent):
    """The citizen's rating of how the dossier was handled."""

    type: Literal["dossier.rated"]
    rating: Rating


class FeedbackFiled(FeedbackEvent):
    """Phản ánh, kiến nghị được tiếp nhận."""

    type: Literal["feedback.filed"]
    filed_at: Timestamp
    topic: FeedbackTopic
    due_at: Timestamp = Field(
        description="Answer deadline (15 working days from filing by default)."
    )


class FeedbackAnswered(FeedbackEvent):
    type: Literal["feedback.answered"]


class FeedbackPublished(FeedbackEvent):
    type: Literal["feedback.published"]


class FeedbackRated(FeedbackEvent):
    type: Literal["feedback.rated"]
    rating: Rating


# The most dossier ids one manifest lists: a day this small or smaller can be checked id by id
# (1,000 ids of 40 characters stay well inside the 64 KiB limit of one event).
MANIFEST_MAX_IDS = 1000
Count = Annotated[int, Field(ge=0, le=10**9)]


class ManifestDaily(Envelope):
    """Bảng kê cuối ngày: what the source system recorded for one agency and one local day
    (Asia/Ho_Chi_Minh), for motcua-monitor to reconcile with what it stored. Idempotent: a later
    manifest of the same agency and day (by occurred_at) replaces the earlier one, and every
    version stays in the events log. Counts follow the figures' own rules: received by the local
    day of received_at; finished by the local day of its end (resolved, else returned, else
    withdrawn); open at the end of the day: received by then and not yet finished."""

    type: Literal["manifest.daily"]
    day: date = Field(description="The local day (Asia/Ho_Chi_Minh) the counts are of.")
    dossiers_received: Count = Field(description="Dossiers received that day.")
    dossiers_finished: Count = Field(description="Dossiers whose handling ended that day.")
    dossiers_open: Count = Field(description="Dossiers open at the end of the day.")
    feedback_filed: Count = Field(description="Feedback items filed that day.")
    feedback_answered: Count = Field(description="Feedback items answered that day.")
    received_ids: Annotated[list[EntityId], Field(max_length=MANIFEST_MAX_IDS)] | None = Field(
        default=None,
        description=(
            "Optional: the ids (dossier_id) of every dossier received that day, when there are "
            f"at most {MANIFEST_MAX_IDS}; each once, as many as dossiers_received."
        ),
    )

    @model_validator(mode="after")
    def _ids_match_count(self) -> ManifestDaily:
        ids = self.received_ids
        if ids is not None:
            if len(set(ids)) != len(ids):
                raise ValueError("received_ids lists a dossier id more than once")
            if len(ids) != self.dossiers_received:
                raise ValueError(
                    f"received_ids has {len(ids)} ids but dossiers_received is "
                    f"{self.dossiers_received}"
                )
        return self


DOSSIER_MODELS: tuple[type[DossierEvent], ...] = (
    DossierReceived,
    DossierSupplementRequested,
    DossierSupplementReceived,
    DossierResolved,
    DossierReturned,
    DossierLate,
    DossierApologyIssued,
    DossierWithdrawn,
    DossierPaid,
    DossierDigitized,
    DossierRated,
)
FEEDBACK_MODELS: tuple[type[FeedbackEvent], ...] = (
    FeedbackFiled,
    FeedbackAnswered,
    FeedbackPublished,
    FeedbackRated,
)

Event = Annotated[
    DossierReceived
    | DossierSupplementRequested
    | DossierSupplementReceived
    | DossierResolved
    | DossierReturned
    | DossierLate
    | DossierApologyIssued
    | DossierWithdrawn
    | DossierPaid
    | DossierDigitized
    | DossierRated
    | FeedbackFiled
    | FeedbackAnswered
    | FeedbackPublished
    | FeedbackRated
    | ManifestDaily,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_type_of(model: type[Envelope]) -> str:
    """The `type` literal a model accepts."""
    annotation = model.model_fields["type"].annotation
    return str(annotation.__args__[0])  # type: ignore[union-attr]


MANIFEST_MODELS: tuple[type[Envelope], ...] = (ManifestDaily,)

EVENT_TYPES: dict[str, type[Envelope]] = {
    event_type_of(m): m for m in (*DOSSIER_MODELS, *FEEDBACK_MODELS, *MANIFEST_MODELS)
}


def parse_event(data: bytes | str) -> Event:
    """Validate one JSON payload against contract v1; raises pydantic.ValidationError.

    Strict: a JSON value must have the field's own JSON type (`"amount_vnd": "5"` is refused,
    as the JSON Schema says; lax mode turned the string into 5). Times, UUIDs and codes are
    strings in JSON, as the schema has them. A repeated key is the caller's check
    (schemas/v1/strict_json.py), since it needs the bytes parsed a second time."""
    return EVENT_ADAPTER.validate_json(data, strict=True)
