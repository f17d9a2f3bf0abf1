-- Daily intake rollups, kept incrementally by materialized views. Day is the calendar day in
-- Asia/Ho_Chi_Minh. Counts are exact distinct-dossier states, so a duplicate delivery that slipped
-- past every other layer still counts once; reads re-aggregate with uniqExactMerge.
CREATE TABLE IF NOT EXISTS dossier_intake_daily (
    day Date,
    agency_code LowCardinality(String),
    domain_code LowCardinality(String),
    level LowCardinality(String),
    channel LowCardinality(String),
    received AggregateFunction(uniqExact, String),
    fee_required AggregateFunction(uniqExact, String),
    paper_result_required AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (agency_code, domain_code, level, channel, day)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS dossier_intake_daily_mv TO dossier_intake_daily AS
SELECT
    toDate(assumeNotNull(received_at), 'Asia/Ho_Chi_Minh') AS day,
    agency_code,
    assumeNotNull(domain_code) AS domain_code,
    assumeNotNull(level) AS level,
    assumeNotNull(channel) AS channel,
    uniqExactState(entity_id) AS received,
    uniqExactStateIf(entity_id, fee_required = 1) AS fee_required,
    uniqExactStateIf(entity_id, paper_result_required = 1) AS paper_result_required
FROM events
WHERE type = 'dossier.received'
GROUP BY day, agency_code, domain_code, level, channel;

CREATE TABLE IF NOT EXISTS feedback_intake_daily (
    day Date,
    agency_code LowCardinality(String),
    topic LowCardinality(String),
    filed AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (agency_code, topic, day)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS feedback_intake_daily_mv TO feedback_intake_daily AS
SELECT
    toDate(assumeNotNull(filed_at), 'Asia/Ho_Chi_Minh') AS day,
    agency_code,
    assumeNotNull(topic) AS topic,
    uniqExactState(entity_id) AS filed
FROM events
WHERE type = 'feedback.filed'
GROUP BY day, agency_code, topic;
