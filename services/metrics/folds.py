"""Where per-item rows come from: the live folded state, or the raw log as known at an instant.

The live path reads the `dossiers` / `feedback` views over the state tables that materialized
views keep. An as-of question folds the raw `events` log up to an ingest time instead, with the
same aggregates, so the answer depends only on what was stored by then and never changes. A drift
test ties these folds to migrations 0003, 0004 and 0006.
"""

from __future__ import annotations

_DT = "DateTime64(3, 'UTC')"
_EPOCH = "(toDateTime64(0, 3, 'UTC'), '')"

DOSSIER_FOLD = f"""
SELECT
    agency_code,
    entity_id AS dossier_id,
    max(e.procedure_code) AS procedure_code,
    max(e.domain_code) AS domain_code,
    max(e.level) AS level,
    max(if(e.type = 'dossier.received', e.channel, NULL)) AS channel,
    min(e.received_at) AS received_at,
    min(e.due_at) AS due_at,
    max(e.fee_required) AS fee_required,
    max(e.paper_result_required) AS paper_result_required,
    arraySort(groupUniqArrayIf((e.occurred_at, e.event_id),
        e.type = 'dossier.supplement_requested')) AS supplement_requests,
    arraySort(groupUniqArrayIf((e.occurred_at, e.event_id),
        e.type = 'dossier.supplement_received')) AS supplement_receipts,
    min(if(e.type = 'dossier.resolved', e.occurred_at, NULL)) AS resolved_at,
    max(e.outcome) AS outcome,
    max(e.e_result) AS e_result,
    min(if(e.type = 'dossier.returned', e.occurred_at, NULL)) AS returned_at,
    min(if(e.type = 'dossier.withdrawn', e.occurred_at, NULL)) AS withdrawn_at,
    min(if(e.type = 'dossier.late', e.occurred_at, NULL)) AS late_notice_at,
    arraySort(groupUniqArrayIf((e.occurred_at, assumeNotNull(e.new_due_at), e.event_id),
        e.type = 'dossier.apology_issued')) AS apologies,
    arraySort(groupUniqArrayIf(
        (e.occurred_at, toString(assumeNotNull(e.channel)), assumeNotNull(e.amount_vnd),
         e.event_id),
        e.type = 'dossier.paid')) AS payments,
    min(if(e.type = 'dossier.digitized', e.occurred_at, NULL)) AS digitized_at,
    max(if(e.type = 'dossier.rated', (e.occurred_at, toString(assumeNotNull(e.rating))),
        {_EPOCH})) AS last_rating,
    uniqExact(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    max(e.ingested_at) AS last_ingested_at
FROM events AS e
WHERE entity = 'dossier' AND e.ingested_at <= {{as_of:{_DT}}}
GROUP BY agency_code, entity_id
"""

FEEDBACK_FOLD = f"""
SELECT
    agency_code,
    entity_id AS feedback_id,
    min(e.filed_at) AS filed_at,
    max(e.topic) AS topic,
    min(e.due_at) AS due_at,
    min(if(e.type = 'feedback.answered', e.occurred_at, NULL)) AS answered_at,
    min(if(e.type = 'feedback.published', e.occurred_at, NULL)) AS published_at,
    max(if(e.type = 'feedback.rated', (e.occurred_at, toString(assumeNotNull(e.rating))),
        {_EPOCH})) AS last_rating,
    uniqExact(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    max(e.ingested_at) AS last_ingested_at
FROM events AS e
WHERE entity = 'feedback' AND e.ingested_at <= {{as_of:{_DT}}}
GROUP BY agency_code, entity_id
"""


def dossier_source(as_of: bool) -> str:
    """A FROM-able source of one row per dossier; `{as_of}` must then be a query parameter."""
    return f"({DOSSIER_FOLD})" if as_of else "dossiers"


def feedback_source(as_of: bool) -> str:
    return f"({FEEDBACK_FOLD})" if as_of else "feedback"
