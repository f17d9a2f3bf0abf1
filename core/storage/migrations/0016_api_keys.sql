-- API keys (services/api/keys.py): an append-only log, one row when a key is created and one
-- when it is revoked. A key's state is folded at read time (a key with any 'revoked' row is
-- revoked), so a revocation is a plain insert that no merge can undo or delay, and the table
-- keeps who did what and when. Only the SHA-256 of a key is stored, never the key.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id String,                               -- public id, shown by `motcua keys list`
    action Enum8('created' = 1, 'revoked' = 2),
    at DateTime64(3, 'UTC'),
    key_hash String,                             -- hex SHA-256 of the key; empty on revocations
    name String,                                 -- who holds it, e.g. "Kiểm toán nhà nước"
    role LowCardinality(String),                 -- viewer | auditor | admin; empty on revocations
    actor String                                 -- cli | bootstrap | first-start | api:<key_id>
)
ENGINE = MergeTree
ORDER BY (key_id, at);
