-- Where every agency stands against every target of every loaded plan, as evaluated over time
-- (core/plans/status.py): the history GET /v1/targets/{id}, Grafana and the public page draw.
-- Like metric_snapshots, a row is written when a status or its figures change, and every key
-- again at least hourly, so "the latest status at time T" is an argMax.
CREATE TABLE IF NOT EXISTS target_status (
    evaluated_at DateTime64(3, 'UTC'),
    plan LowCardinality(String),                -- plan key: id@version
    target_id LowCardinality(String),
    agency_code LowCardinality(String),         -- '' = the target's scope as a whole
    period_start Date32,
    period_end Date32,                          -- last day of the period, included
    metric LowCardinality(String),
    comparator LowCardinality(String),
    threshold Float64,
    numerator UInt64,
    denominator UInt64,
    pending UInt64,                             -- items counted but not yet decided
    value Nullable(Float64),
    -- met | on_track | at_risk | missed | insufficient_data
    status LowCardinality(String),
    forecast Nullable(Float64),                 -- expected value at the period's end
    forecast_low Nullable(Float64),             -- 80% interval
    forecast_high Nullable(Float64),
    expected_denominator Nullable(Float64),     -- expected volume at the period's end
    forecast_method LowCardinality(String),
    budget Nullable(Int64),                     -- ceilings: numerator items still affordable
    needed Nullable(Int64),                     -- floors: numerator items still needed
    needed_per_working_day Nullable(Float64),
    remaining_working_days UInt16,
    burn_rates Map(String, Float64),            -- window → burn rate (ceilings only)
    data_watermark DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYear(period_start)
ORDER BY (plan, target_id, agency_code, period_start, evaluated_at);
