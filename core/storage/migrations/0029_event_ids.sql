-- Every stored event's id and payload digest, sorted by id: what the ingest asks, for every
-- first delivery, whether an event is stored already and with what content (issue 17). It
-- replaces a filter each ingest process held in memory (8 bytes per stored event, loaded by a
-- scan of every id at start, and blind to what other ingest processes stored).
--
-- `key` is toUInt128(event_id), which Python computes as UUID.int: the ingest binds 10,000 keys
-- as integers, where 10,000 UUID strings cost ~170 ms of client-side escaping per flush.
-- Small granules and no compression (ids and digests are random bytes) keep a lookup of one
-- flush's ids to a read of one small granule per id, the same however many events are stored.
--
-- The ingest's writer inserts a batch's ids here before the events themselves, not through a
-- view (a view commits its block after the events' part): an event in `events` always has its
-- id here, and an id without its event only exists while the event's message is unacked, so
-- JetStream redelivers it and the redelivery, checked against `events`, stores it.
--
-- Duplicate rows (a retried insert) collapse on merge and cost a lookup nothing (GROUP BY key),
-- so no dedup window; `motcua replay` does not touch this table (no view feeds it).
CREATE TABLE IF NOT EXISTS event_ids (
    key UInt128 CODEC(NONE),
    digest FixedString(16) CODEC(NONE)          -- MD5(payload), as the ingest computes it
)
ENGINE = ReplacingMergeTree
ORDER BY key
SETTINGS index_granularity = 256;

-- The events stored before this migration (it runs before any writer starts).
INSERT INTO event_ids SELECT toUInt128(event_id), MD5(payload) FROM events;
