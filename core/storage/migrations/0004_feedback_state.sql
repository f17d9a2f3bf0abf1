-- The current state of each feedback item (phản ánh, kiến nghị); same idempotent folding as dossiers.
CREATE TABLE IF NOT EXISTS feedback_state (
    agency_code LowCardinality(String),
    feedback_id String,
    filed_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    topic SimpleAggregateFunction(max, Nullable(String)),
    due_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    answered_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    published_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    last_rating SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), String)),
    event_count AggregateFunction(uniqExact, UUID),
    last_event_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_ingested_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (agency_code, feedback_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_state_mv TO feedback_state AS
SELECT
    agency_code,
    entity_id AS feedback_id,
    min(e.filed_at) AS filed_at,
    max(e.topic) AS topic,
    min(e.due_at) AS due_at,
    min(if(e.type = 'feedback.answered', e.occurred_at, NULL)) AS answered_at,
    min(if(e.type = 'feedback.published', e.occurred_at, NULL)) AS published_at,
    max(if(e.type = 'feedback.rated', (e.occurred_at, toString(assumeNotNull(e.rating))), (toDateTime64(0, 3, 'UTC'), ''))) AS last_rating,
    uniqExactState(e.event_id) AS event_count,
    max(e.occurred_at) AS last_event_at,
    max(e.ingested_at) AS last_ingested_at
FROM events AS e
WHERE entity = 'feedback'
GROUP BY agency_code, entity_id;
