-- The append-only log of every valid event, with its provenance.
-- ReplacingMergeTree on the full sort key is the last of the idempotency layers (there are seven;
-- core/ingestion/dedup.py lists them and why each is needed): an exact duplicate collapses on merge.
CREATE TABLE IF NOT EXISTS events (
    event_id UUID,
    type LowCardinality(String),
    schema_version UInt8,
    occurred_at DateTime64(3, 'UTC'),
    agency_code LowCardinality(String),
    source LowCardinality(String),
    entity LowCardinality(String),              -- 'dossier' | 'feedback'
    entity_id String,                           -- dossier_id or feedback_id
    procedure_code LowCardinality(Nullable(String)),
    domain_code LowCardinality(Nullable(String)),
    level LowCardinality(Nullable(String)),
    channel LowCardinality(Nullable(String)),   -- dossier.received: submission channel; dossier.paid: payment channel
    received_at Nullable(DateTime64(3, 'UTC')),
    due_at Nullable(DateTime64(3, 'UTC')),      -- dossier.received and feedback.filed
    fee_required Nullable(UInt8),
    paper_result_required Nullable(UInt8),
    outcome LowCardinality(Nullable(String)),
    e_result Nullable(UInt8),
    new_due_at Nullable(DateTime64(3, 'UTC')),
    amount_vnd Nullable(UInt64),
    rating LowCardinality(Nullable(String)),
    filed_at Nullable(DateTime64(3, 'UTC')),
    topic LowCardinality(Nullable(String)),
    payload String CODEC(ZSTD(3)),              -- the validated event as canonical JSON
    subject String,
    stream_seq UInt64,
    published_at DateTime64(3, 'UTC'),          -- when JetStream stored it
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYear(occurred_at)
ORDER BY (entity, agency_code, entity_id, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
