-- Every event the ingest refused, with the reason and the original bytes, so an integrator can fix
-- and replay it. Nothing here is counted in any figure.
CREATE TABLE IF NOT EXISTS dead_letters (
    dead_lettered_at DateTime64(3, 'UTC') DEFAULT now64(3),
    subject String,
    stream_seq UInt64,
    published_at DateTime64(3, 'UTC'),
    agency_code LowCardinality(String),          -- from the subject; '' when the subject has none
    source LowCardinality(String),               -- from the payload when it could be read
    event_id Nullable(UUID),
    reason LowCardinality(String),               -- machine-readable class, e.g. invalid_json
    detail String,                               -- the human-readable explanation
    raw String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(published_at)
ORDER BY (agency_code, published_at, stream_seq)
SETTINGS non_replicated_deduplication_window = 10000;
