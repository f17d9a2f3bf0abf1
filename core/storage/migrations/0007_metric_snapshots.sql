-- What the metrics service computed, when: the history Grafana draws and plan alerts read.
-- A row is written when a figure changes, and every figure again each hour, so the table stays
-- small while "the latest value at time T" is always answerable with argMax.
CREATE TABLE IF NOT EXISTS metric_snapshots (
    computed_at DateTime64(3, 'UTC'),
    period LowCardinality(String),              -- 'month' | 'year'
    period_start Date,
    metric LowCardinality(String),
    agency_code LowCardinality(String),
    numerator UInt64,
    denominator UInt64,
    data_watermark DateTime64(3, 'UTC')         -- newest ingested_at behind the figure
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(computed_at)
ORDER BY (metric, period, agency_code, computed_at)
TTL toDateTime(computed_at) + INTERVAL 5 YEAR DELETE;
