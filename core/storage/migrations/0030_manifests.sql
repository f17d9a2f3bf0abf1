-- Daily source manifests (event type manifest.daily, issue 18): per agency and local day, what
-- the source one-stop system says it recorded, kept beside what motcua stored so the two can be
-- reconciled (core/figures/completeness.py).
--
-- One row per manifest event, fed from the events log like every derived table (so `motcua
-- replay` rebuilds it). A day's latest manifest wins at read time, by (occurred_at, ingested_at):
-- reads take argMax, never FINAL, and older versions stay for as-of questions and the audit
-- trail. A duplicate delivery is the same row again (same event_id, same content), which a
-- merge collapses and argMax ignores, so, like the parts (0027), no dedup window: a window would
-- drop the ingest's retry of a block whose first write failed after its hash was recorded.
-- `has_ids` tells "no list" (a big day) from "an empty list" (a day with no dossiers).
CREATE TABLE IF NOT EXISTS manifests (
    agency_code LowCardinality(String),
    day Date,
    occurred_at DateTime64(3, 'UTC'),
    event_id UUID,
    source LowCardinality(String),
    dossiers_received UInt64,
    dossiers_finished UInt64,
    dossiers_open UInt64,
    feedback_filed UInt64,
    feedback_answered UInt64,
    has_ids UInt8,
    received_ids Array(String),
    ingested_at DateTime64(3, 'UTC'),
    -- what arrived since the reconciler's last step (core/figures/completeness.py)
    INDEX idx_ingested_at ingested_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYear(day)
ORDER BY (agency_code, day, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 0;

CREATE MATERIALIZED VIEW IF NOT EXISTS manifests_mv TO manifests AS
SELECT
    agency_code,
    toDate(entity_id) AS day,
    occurred_at,
    event_id,
    source,
    JSONExtractUInt(payload, 'dossiers_received') AS dossiers_received,
    JSONExtractUInt(payload, 'dossiers_finished') AS dossiers_finished,
    JSONExtractUInt(payload, 'dossiers_open') AS dossiers_open,
    JSONExtractUInt(payload, 'feedback_filed') AS feedback_filed,
    JSONExtractUInt(payload, 'feedback_answered') AS feedback_answered,
    toUInt8(JSONType(payload, 'received_ids') = 'Array') AS has_ids,
    JSONExtract(payload, 'received_ids', 'Array(String)') AS received_ids,
    ingested_at
FROM events
WHERE entity = 'manifest';
