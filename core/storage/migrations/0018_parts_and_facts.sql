-- The figures' read model (core/figures/facts.py has the why in full).
--
-- *_parts: what each insert adds to an item, folded per (item, ingested_at) by a materialized
-- view. The same idempotent aggregates as 0003/0004, with the ingest instant kept in the key, so
-- the state of an item as the store knew it at any instant is a merge of its parts up to then.
-- `folded_at` (when the view wrote the row) is what the refolder follows: a part re-inserted by
-- the ingest's crash recovery keeps its old ingested_at but gets a new folded_at.
--
-- *_facts: one row per item and state version, folded once from the parts by the refolder, with
-- the instant-independent parts of every judgment precomputed. valid_from..valid_to is the span
-- of ingest time the version holds for (valid_to 2299-12-31 for the current state), so live and
-- as-of questions read the same table. Rows are added and cancelled (sign), never updated: a
-- read sums `sign` and is exact whatever merges have or have not happened; `version` is a hash
-- of the row's content, so a merge only ever collapses a row with its exact cancellation.
-- part_month partitions by what the questions prune on: current rows by the month the dossier
-- finished (999999 while open) or the feedback was filed; superseded versions by minus the month
-- they stopped holding, which only as-of questions read.

CREATE TABLE IF NOT EXISTS dossier_parts (
    agency_code LowCardinality(String),
    dossier_id String,
    ingested_at DateTime64(3, 'UTC'),
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
    folded_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    INDEX idx_folded_at folded_at TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
ORDER BY (agency_code, dossier_id, ingested_at)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_parts_mv TO dossier_parts AS
SELECT
    agency_code,
    entity_id AS dossier_id,
    e.ingested_at AS ingested_at,
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
    now64(3) AS folded_at
FROM events AS e
WHERE entity = 'dossier'
GROUP BY agency_code, entity_id, e.ingested_at;

CREATE TABLE IF NOT EXISTS feedback_parts (
    agency_code LowCardinality(String),
    feedback_id String,
    ingested_at DateTime64(3, 'UTC'),
    filed_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    topic SimpleAggregateFunction(max, Nullable(String)),
    due_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    answered_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    published_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    last_rating SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), String)),
    event_count AggregateFunction(uniqExact, UUID),
    last_event_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    folded_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    INDEX idx_folded_at folded_at TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
ORDER BY (agency_code, feedback_id, ingested_at)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_parts_mv TO feedback_parts AS
SELECT
    agency_code,
    entity_id AS feedback_id,
    e.ingested_at AS ingested_at,
    min(e.filed_at) AS filed_at,
    max(e.topic) AS topic,
    min(e.due_at) AS due_at,
    min(if(e.type = 'feedback.answered', e.occurred_at, NULL)) AS answered_at,
    min(if(e.type = 'feedback.published', e.occurred_at, NULL)) AS published_at,
    max(if(e.type = 'feedback.rated', (e.occurred_at, toString(assumeNotNull(e.rating))), (toDateTime64(0, 3, 'UTC'), ''))) AS last_rating,
    uniqExactState(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    now64(3) AS folded_at
FROM events AS e
WHERE entity = 'feedback'
GROUP BY agency_code, entity_id, e.ingested_at;

CREATE TABLE IF NOT EXISTS dossier_facts (
    agency_code LowCardinality(String),
    dossier_id String,
    valid_from DateTime64(3, 'UTC'),
    valid_to DateTime64(3, 'UTC'),
    part_month Int32,
    version UInt64,
    sign Int8,
    procedure_code LowCardinality(Nullable(String)),
    domain_code LowCardinality(Nullable(String)),
    level LowCardinality(Nullable(String)),
    channel LowCardinality(Nullable(String)),
    received_at Nullable(DateTime64(3, 'UTC')),
    due_at Nullable(DateTime64(3, 'UTC')),
    fee_required Nullable(UInt8),
    paper_result_required Nullable(UInt8),
    e_result Nullable(UInt8),
    outcome LowCardinality(Nullable(String)),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    returned_at Nullable(DateTime64(3, 'UTC')),
    withdrawn_at Nullable(DateTime64(3, 'UTC')),
    end_at Nullable(DateTime64(3, 'UTC')),
    supplement_requests Array(DateTime64(3, 'UTC')),
    supplement_receipts Array(DateTime64(3, 'UTC')),
    end_requests UInt16,
    end_effective_at Nullable(DateTime64(3, 'UTC')),
    end_late UInt8,
    end_late_day UInt8,
    end_early_day UInt8,
    late_notice_at Nullable(DateTime64(3, 'UTC')),
    apologies UInt16,
    first_apology_at Nullable(DateTime64(3, 'UTC')),
    paid_at Nullable(DateTime64(3, 'UTC')),
    paid_online UInt8,
    paid_amount UInt64,
    digitized_at Nullable(DateTime64(3, 'UTC')),
    last_rating Tuple(DateTime64(3, 'UTC'), String),
    event_count UInt64,
    last_event_at DateTime64(3, 'UTC'),
    INDEX idx_received_at received_at TYPE minmax GRANULARITY 1,
    INDEX idx_paid_at paid_at TYPE minmax GRANULARITY 1
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY part_month
ORDER BY (agency_code, dossier_id, valid_to)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

CREATE TABLE IF NOT EXISTS feedback_facts (
    agency_code LowCardinality(String),
    feedback_id String,
    valid_from DateTime64(3, 'UTC'),
    valid_to DateTime64(3, 'UTC'),
    part_month Int32,
    version UInt64,
    sign Int8,
    filed_at Nullable(DateTime64(3, 'UTC')),
    topic LowCardinality(Nullable(String)),
    due_at Nullable(DateTime64(3, 'UTC')),
    answered_at Nullable(DateTime64(3, 'UTC')),
    published_at Nullable(DateTime64(3, 'UTC')),
    last_rating Tuple(DateTime64(3, 'UTC'), String),
    event_count UInt64,
    last_event_at DateTime64(3, 'UTC')
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY part_month
ORDER BY (agency_code, feedback_id, valid_to)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 1024;

-- How far the refolder got: every part with folded_at <= watermark is in the facts.
CREATE TABLE IF NOT EXISTS facts_progress (
    entity LowCardinality(String),
    watermark DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY entity;
