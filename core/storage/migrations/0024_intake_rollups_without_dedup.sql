-- The daily intake rollups hold exact sets of ids (uniqExact states): inserting the same block
-- twice changes nothing, so they need no dedup window of their own. With one, a retried insert
-- after ClickHouse refused writes could be dropped for this view as already seen although its
-- part never landed (tests/test_faults.py, clickhouse_unwritable: a batch's receipts missing).
ALTER TABLE dossier_intake_daily MODIFY SETTING non_replicated_deduplication_window = 0;
ALTER TABLE feedback_intake_daily MODIFY SETTING non_replicated_deduplication_window = 0;
