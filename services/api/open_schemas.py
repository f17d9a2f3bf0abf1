"""Response models of the open data (GET /v1/open/…): the public page's figures with their
counts, definitions and provenance (services/api/page/open_data.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class OpenCount(BaseModel):
    numerator: int
    denominator: int
    percent: float | None = Field(description="numerator / denominator × 100, 2 decimals")
    undecided: int = Field(
        description="Items whose outcome is not decided yet (feedback still within its answer "
        "deadline): in neither the numerator nor the denominator"
    )


class OpenDefinition(BaseModel):
    id: str
    label: str
    description: str
    target: str = ""


class OpenProvenance(BaseModel):
    computed_at: datetime = Field(description="When the figures were read from the store")
    judged_at: datetime = Field(description="Open items are judged at this instant")
    watermark: datetime | None = Field(description="Newest ingest time among the events used")
    rule_set: str
    org_tree: str
    calendar: str
    catalog: str = Field(description="Procedure catalogue version of the 766 index")
    cache_seconds: float = Field(description="How long the same answer is served")


class OpenDataset(BaseModel):
    dataset: str
    title: str
    year: int
    period_from: date
    period_to: date
    definitions: list[OpenDefinition]
    provenance: OpenProvenance


class OpenUnit(BaseModel):
    agency_code: str | None = Field(description="null: the province as a whole")
    name: str
    level: str | None
    includes_children: bool = Field(description="Counted with the units under it")
    figures: dict[str, OpenCount]
    index766_points: float | None = Field(description="null when nothing was counted")


class OpenFigures(OpenDataset):
    rows: list[OpenUnit]


class OpenMonth(BaseModel):
    month: str = Field(description="YYYY-MM, Asia/Ho_Chi_Minh")
    figures: dict[str, OpenCount]


class OpenMonthly(OpenDataset):
    rows: list[OpenMonth]


class OpenIndexGroup(BaseModel):
    group: str
    label: str
    points: float | None
    max_points: float
    not_assessed_points: float


class OpenIndexUnit(BaseModel):
    agency_code: str | None
    name: str
    total_points: float | None = Field(description="null when nothing was counted")
    max_points: float
    not_assessed_points: float
    groups: list[OpenIndexGroup]


class OpenIndex766(OpenDataset):
    rows: list[OpenIndexUnit]


class OpenTargetStatus(BaseModel):
    period_from: date
    period_to: date
    agency_code: str | None = Field(description="null: the target's scope as a whole")
    name: str
    status: str
    status_label: str
    numerator: int
    denominator: int
    undecided: int = Field(description="Items not decided yet, left out of `value`")
    value: float | None = Field(description="numerator / (denominator − undecided), in `unit`")
    evaluated_at: datetime | None


class OpenTarget(BaseModel):
    plan: str
    document: str
    illustrative: bool
    clause: str
    target_id: str
    text: str
    measure: str
    metric: str
    requirement: str
    unit: Literal["percent", "minutes"]
    statuses: list[OpenTargetStatus] = Field(
        description="The scope, then each agency, in the latest period evaluated; empty: not "
        "evaluated yet"
    )


class OpenTargets(OpenDataset):
    rows: list[OpenTarget]


class OpenCatalogEntry(BaseModel):
    dataset: str
    title: str
    json_url: str
    csv_url: str


class OpenCatalog(BaseModel):
    description: str
    years: list[int]
    datasets: list[OpenCatalogEntry]
