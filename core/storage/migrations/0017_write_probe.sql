-- The writers' probe (core/storage/clickhouse.py, takes_writes): when an insert fails while
-- the store still answers reads, one row written here tells a store that cannot write (disk
-- full, data directory unwritable, read-only replica) from a row ClickHouse refuses. Without it,
-- such a failure was blamed on each row in turn and every event of the batch dead-lettered as
-- storage_refused (found by tests/test_faults.py). One row per writer; merges keep the latest.
CREATE TABLE IF NOT EXISTS store_write_probe (
    writer LowCardinality(String),
    at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(at)
ORDER BY writer;
