-- Whether the day counts (dossier_days) can be trusted: the refolder marks them dirty before it
-- writes facts and clean after the write and its view have both finished. A process killed in
-- between (the facts written, the view's rows not) leaves the mark dirty: questions then read
-- the facts alone until the refolder, at its next start, has reconciled the counts with the
-- facts (core/figures/facts.py, Refolder.reconcile_counts). `seq` orders the marks (ns).
CREATE TABLE IF NOT EXISTS counts_guard (
    entity LowCardinality(String),
    dirty UInt8,
    seq UInt64
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY entity;
