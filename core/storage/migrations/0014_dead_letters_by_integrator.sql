-- Dead letters per integrator, their replay after a fix, and how long their raw bytes are kept.
--
-- The integrator of a dead letter is the agency token of its subject (motcua.events.<agency>.<type>,
-- filed again on motcua.dlq.<agency>): always known, even for bytes that are not JSON, and what an
-- integrator's NATS credentials allow it to publish on. `source` (the payload's publishing system)
-- is kept beside it when the payload could be read.

-- A bad payload may carry personal data the contract forbids (a citizen's name pasted into a
-- field): its bytes are blanked 90 days after it was dead-lettered, when its part is next merged.
-- The row (reason, detail, subject, counts) stays. Change the interval with the same statement.
ALTER TABLE dead_letters
    MODIFY COLUMN raw String CODEC(ZSTD(3)) TTL toDateTime(dead_lettered_at) + INTERVAL 90 DAY;

-- One row per dead letter `motcua dlq replay` took care of, so a second replay skips it.
-- Append-only like everything else: the dead letter itself is never rewritten.
CREATE TABLE IF NOT EXISTS dead_letter_replays (
    replayed_at DateTime64(3, 'UTC') DEFAULT now64(3),
    subject String,                              -- the dead letter's identity:
    stream_seq UInt64,                           --   subject, stream sequence and
    published_at DateTime64(3, 'UTC'),           --   JetStream time of the refused message
    agency_code LowCardinality(String),
    event_id Nullable(UUID),
    outcome LowCardinality(String),              -- republished | already_stored
    replay_seq UInt64                            -- MOTCUA_EVENTS sequence of the republish; 0 if none
)
ENGINE = MergeTree
ORDER BY (agency_code, published_at, stream_seq);

-- Counts per day (Asia/Ho_Chi_Minh), integrator and reason; `replayed` of them were republished
-- or found already stored by a replay.
CREATE VIEW IF NOT EXISTS dead_letters_daily AS
SELECT
    toDate(d.dead_lettered_at, 'Asia/Ho_Chi_Minh') AS day,
    d.agency_code AS integrator,
    d.reason AS reason,
    count() AS dead_letters,
    toUInt64(sum(r.replayed)) AS replayed,
    groupUniqArrayIf(10)(toString(d.source), d.source != '') AS sources,
    max(d.dead_lettered_at) AS last_at
FROM dead_letters AS d FINAL
LEFT JOIN (
    SELECT subject, stream_seq, published_at, toUInt8(1) AS replayed
    FROM dead_letter_replays
    GROUP BY subject, stream_seq, published_at
) AS r ON d.subject = r.subject AND d.stream_seq = r.stream_seq AND d.published_at = r.published_at
GROUP BY day, integrator, reason;
