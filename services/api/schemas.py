"""Response models of the read API, distinct from storage rows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer


class MetricDefinition(BaseModel):
    id: str
    label: str = Field(description="Tên chỉ tiêu (tiếng Việt)")
    description: str
    entity: str
    groupable_by: list[str]
    target: str = Field(description="Mục tiêu của kế hoạch, nếu có")
    unit: str = Field(description="ratio: rate = share; minutes: rate = average in minutes")


class Completeness(BaseModel):
    """How complete a figure's population is: the dossiers the source systems reported in their
    daily manifests against what motcua holds (core/figures/completeness.py, issue 18)."""

    reported: int = Field(
        description="Dossiers received that the source systems reported, over the agency-days "
        "of the period and scope that have a manifest (ended days only)"
    )
    held: int = Field(description="Of those, the dossiers motcua holds")
    missing: int = Field(description="Reported by the source, not held by motcua")
    extra: int = Field(description="Held by motcua, not reported by the source")
    share: float | None = Field(
        description="held / reported (6 decimals); null when nothing was reported: unknown"
    )
    manifest_days: int = Field(description="Agency-days of the period with a manifest")
    days_without_manifest: int = Field(
        description="Ended days of the scope's manifest-sending agencies without a manifest: "
        "days whose completeness nobody can tell"
    )
    agencies_without_manifests: int = Field(
        description="Agencies of the scope that sent no manifest (0 for a province-wide question)"
    )
    threshold: float = Field(description="MOTCUA_COMPLETENESS_THRESHOLD when the figure was read")
    incomplete: bool = Field(
        description="share is known and below the threshold: the figure counts a population "
        "known to lack part of the source's dossiers"
    )


class MetricGroup(BaseModel):
    group: str | None = Field(description="The group's key; null when not grouped")
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator / denominator; null when denominator is 0")
    undecided: int | None = Field(
        default=None,
        description="Items of the denominator whose outcome is not decided at judged_at (feedback "
        "still within its answer deadline): neither a success nor a failure yet, so "
        "numerator / (denominator - undecided) is the rate over decided items. Only on figures "
        "with such items (feedback_answered_on_time); absent elsewhere",
    )
    completeness: Completeness | None = Field(
        default=None,
        description="The group's own completeness, when grouped by agency (the agency's own "
        "dossiers, as the group counts them); absent under any other grouping",
    )

    @model_serializer(mode="wrap")
    def _without_absent_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        # absent, not null, where the notion does not apply: those answers stay as they were
        data = handler(self)
        if isinstance(data, dict):
            for name in ("undecided", "completeness"):
                if data.get(name) is None:
                    data.pop(name, None)
        return data


class Provenance(BaseModel):
    as_of: datetime | None = Field(
        description="The ingest instant asked for; null means the live state"
    )
    watermark: datetime | None = Field(description="Newest ingest time among the events used")
    events: int = Field(description="Distinct events behind the figure")
    rule_set: str = Field(description="Rule set (name@version) that classified the items")
    calendar: str = Field(description="Working-day calendar version (year files)")
    org_tree: str = Field(description="Org tree version the agency filter was expanded with")
    computed_at: datetime | None = Field(
        default=None,
        description="When the figure was read from the store (the as_of instant when given): "
        "what a board states as its freshness",
    )
    completeness: Completeness | None = Field(
        default=None,
        description="How complete the figure's population is for its period (its ended days) "
        "and agency scope, as judged at the figure's instant (as_of, else computed_at). The "
        "domain and level filters do not narrow it: manifests count an agency's whole day",
    )


class MetricResult(BaseModel):
    metric: str
    label: str
    period_from: date
    period_to: date
    judged_at: datetime = Field(description="Open items are judged at this instant")
    group_by: str | None
    agency: list[str]
    domain: list[str]
    level: list[str]
    groups: list[MetricGroup]
    provenance: Provenance


class DeadLetterOut(BaseModel):
    dead_lettered_at: datetime
    subject: str
    stream_seq: int
    agency_code: str
    integrator: str = Field(description="The subject's agency token (who published it)")
    source: str
    event_id: str | None
    reason: str
    detail: str
    raw_preview: str = Field(
        description="The first 512 bytes as text (invalid UTF-8 shown as U+FFFD); the whole "
        "bytes, verbatim, from `raw_url`"
    )
    raw_bytes: int = Field(description="How many bytes were refused; 0 once expired")
    raw_url: str = Field(description="Where to download the original bytes (auditor)")
    raw_expired: bool = Field(description="The bytes were blanked by the retention TTL")
    replayed: bool = Field(description="`motcua dlq replay` republished it or found it stored")


class DeadLetterDay(BaseModel):
    day: date = Field(description="Day dead-lettered, Asia/Ho_Chi_Minh")
    integrator: str
    reason: str
    dead_letters: int
    replayed: int
    sources: list[str] = Field(description="Publishing systems named in readable payloads")
    last_at: datetime


class DeadLetterSummary(BaseModel):
    period_from: date | None
    period_to: date | None
    total: int
    by_integrator: dict[str, int]
    by_reason: dict[str, int]
    days: list[DeadLetterDay]


# --- Reconciliation with the source systems' daily manifests (issue 18) ------------------------

ReconciliationStatus = Literal["matched", "missing", "extra", "missing_and_extra", "counts_differ"]


class ReconciliationDay(BaseModel):
    """One agency-day with a manifest: the source's counts against motcua's, as last judged by
    `as_of` (core/figures/completeness.py)."""

    agency_code: str
    agency_name: str = Field(description="From the org tree of the period's end; else the code")
    day: date = Field(description="The local day (Asia/Ho_Chi_Minh) the manifest counts")
    status: ReconciliationStatus = Field(
        description="matched: everything agrees; missing / extra / missing_and_extra: the "
        "dossiers received differ; counts_differ: only finished, open or feedback differ"
    )
    status_label: str = Field(description="`status` in Vietnamese")
    reported_received: int = Field(description="Dossiers received that day, says the source")
    stored_received: int = Field(description="Dossiers received that day that motcua holds")
    held_received: int = Field(
        description="Of the reported dossiers, those motcua holds: by id when the manifest "
        "listed ids, else the smaller of the two counts"
    )
    missing: int = Field(description="Reported by the source, not held by motcua")
    extra: int = Field(description="Held by motcua, not reported by the source")
    reported_finished: int
    stored_finished: int
    reported_open: int = Field(description="Open at the end of the day, says the source")
    stored_open: int | None = Field(
        description="Open at the end of the day in motcua; null when the day lies beyond the "
        "45 days the reconciler compares open dossiers over (then not compared)"
    )
    reported_feedback_filed: int
    stored_feedback_filed: int
    reported_feedback_answered: int
    stored_feedback_answered: int
    has_ids: bool = Field(
        description="The manifest listed the day's dossier ids: missing and extra are by id, "
        "and `ids_url` gives them; else by count"
    )
    source: str = Field(description="The source system that sent the manifest")
    manifest_at: datetime = Field(description="The manifest judged: the latest of the day")
    judged_at: datetime = Field(description="When the reconciler made this judgment")
    ids_url: str | None = Field(
        description="The missing and extra ids of the day, judged now (only with listed ids "
        "and a difference)"
    )


class ReconciliationTotals(BaseModel):
    """Sums over the answered rows (every page). Open dossiers are a stock, not a flow: summing
    them over days means nothing, so they are left out."""

    days: int = Field(description="Agency-days answered")
    by_status: dict[str, int] = Field(description="Agency-days per status, every status listed")
    reported_received: int
    stored_received: int
    held_received: int
    missing: int
    extra: int
    held_share: float | None = Field(
        description="held_received / reported_received; null when nothing was reported"
    )
    reported_finished: int
    stored_finished: int
    reported_feedback_filed: int
    stored_feedback_filed: int
    reported_feedback_answered: int
    stored_feedback_answered: int


class ReconciliationReport(BaseModel):
    period_from: date
    period_to: date
    agency: list[str] = Field(description="The agencies asked for (empty: all)")
    as_of: datetime | None = Field(
        description="Only judgments made by this instant; null means the latest"
    )
    computed_at: datetime = Field(description="The instant judgments were read up to")
    org_tree: str = Field(description="Org tree version the agency filter was expanded with")
    last_judged_at: datetime | None = Field(description="The newest judgment among the rows")
    total: int = Field(description="Rows over every page")
    page: int
    page_size: int
    rows: list[ReconciliationDay]
    totals: ReconciliationTotals


class ReconciliationIds(BaseModel):
    """The dossier ids behind one agency-day's missing and extra counts, judged now from the
    day's latest manifest and the live data."""

    agency_code: str
    day: date
    listed: bool = Field(description="The manifest listed ids; without them no id is known")
    missing: int
    extra: int
    missing_ids: list[str] = Field(description="Listed by the source, not held by motcua")
    extra_ids: list[str] = Field(description="Held by motcua, not listed by the source")
    judged_at: datetime
    note: str | None = Field(description="Why no id is given, when none can be")
