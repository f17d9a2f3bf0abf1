-- The current state of each dossier, folded from its events by a materialized view.
-- Every column uses an idempotent, order-independent aggregate (min, max, set union, exact distinct
-- count): a duplicate delivery cannot change the state and events may arrive in any order.
CREATE TABLE IF NOT EXISTS dossier_state (
    agency_code LowCardinality(String),
    dossier_id String,
    procedure_code SimpleAggregateFunction(max, Nullable(String)),
    domain_code SimpleAggregateFunction(max, Nullable(String)),
    level SimpleAggregateFunction(max, Nullable(String)),
    channel SimpleAggregateFunction(max, Nullable(String)),
    received_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    due_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    fee_required SimpleAggregateFunction(max, Nullable(UInt8)),
    paper_result_required SimpleAggregateFunction(max, Nullable(UInt8)),
    supplement_requests SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), UUID))),
    supplement_receipts SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), UUID))),
    resolved_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    outcome SimpleAggregateFunction(max, Nullable(String)),
    e_result SimpleAggregateFunction(max, Nullable(UInt8)),
    returned_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    withdrawn_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    late_notice_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    apologies SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), DateTime64(3, 'UTC'), UUID))),
    payments SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), String, UInt64, UUID))),
    digitized_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    last_rating SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), String)),
    event_count AggregateFunction(uniqExact, UUID),
    last_event_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (agency_code, dossier_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_state_mv TO dossier_state AS
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
    groupUniqArrayIf((e.occurred_at, e.event_id), e.type = 'dossier.supplement_requested') AS supplement_requests,
    groupUniqArrayIf((e.occurred_at, e.event_id), e.type = 'dossier.supplement_received') AS supplement_receipts,
    min(if(e.type = 'dossier.resolved', e.occurred_at, NULL)) AS resolved_at,
    max(e.outcome) AS outcome,
    max(e.e_result) AS e_result,
    min(if(e.type = 'dossier.returned', e.occurred_at, NULL)) AS returned_at,
    min(if(e.type = 'dossier.withdrawn', e.occurred_at, NULL)) AS withdrawn_at,
    min(if(e.type = 'dossier.late', e.occurred_at, NULL)) AS late_notice_at,
    groupUniqArrayIf((e.occurred_at, assumeNotNull(e.new_due_at), e.event_id), e.type = 'dossier.apology_issued') AS apologies,
    groupUniqArrayIf((e.occurred_at, toString(assumeNotNull(e.channel)), assumeNotNull(e.amount_vnd), e.event_id), e.type = 'dossier.paid') AS payments,
    min(if(e.type = 'dossier.digitized', e.occurred_at, NULL)) AS digitized_at,
    max(if(e.type = 'dossier.rated', (e.occurred_at, toString(assumeNotNull(e.rating))), (toDateTime64(0, 3, 'UTC'), ''))) AS last_rating,
    uniqExactState(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    max(e.ingested_at) AS last_ingested_at
FROM events AS e
WHERE entity = 'dossier'
GROUP BY agency_code, entity_id;
