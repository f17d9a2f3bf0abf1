-- Each agency's days as its source system reported them (manifests, 0030) against what motcua
-- stored, judged by the metrics service's reconciler (core/figures/completeness.py) whenever a
-- manifest arrives or an item of that day changes (issue 18). Figures read it for their
-- completeness, `/v1/reconciliation` for the audit: a small table, one row per agency, day and
-- judgment, however many dossiers a day holds.
--
-- Versions, not updates: every judgment that changes a day's row is a new row (evaluated_at),
-- the latest wins at read time (argMax, never FINAL), and an as-of question takes the latest
-- judged by then, so every version stays: evaluated_at is in the sorting key, and a merge only
-- collapses a retried insert of the same judgment. (A sorting key of (agency_code, day) alone
-- would let a merge keep the newest judgment and drop the one an as-of answer was given from.)
--
-- `stored_open` is NULL when the day lies further back than the reconciler compares open
-- dossiers (its window): the count at an old day's end would need a read of every dossier
-- finished since, and the source's own count of it is the least useful of the five.
CREATE TABLE IF NOT EXISTS reconciliation_days (
    agency_code LowCardinality(String),
    day Date,
    evaluated_at DateTime64(3, 'UTC'),
    -- the store's own clock when the step began: every manifest ingested and every part folded
    -- by then was seen, so a restarted reconciler goes on from the newest of these
    data_until DateTime64(3, 'UTC'),
    -- the manifest judged: its source, when it was made, and whether it listed ids
    source LowCardinality(String),
    manifest_at DateTime64(3, 'UTC'),
    has_ids UInt8,
    reported_received UInt64,
    stored_received UInt64,
    -- of the reported dossiers, those motcua holds: by id when listed, else min(stored, reported)
    held_received UInt64,
    -- reported but not held / held but not reported: by id when listed, else the count difference
    missing UInt64,
    extra UInt64,
    reported_finished UInt64,
    stored_finished UInt64,
    reported_open UInt64,
    stored_open Nullable(UInt64),
    reported_feedback_filed UInt64,
    stored_feedback_filed UInt64,
    reported_feedback_answered UInt64,
    stored_feedback_answered UInt64,
    -- matched | missing | extra | missing_and_extra | counts_differ (core/figures/completeness.py)
    status LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYear(day)
ORDER BY (agency_code, day, evaluated_at)
SETTINGS non_replicated_deduplication_window = 0;
