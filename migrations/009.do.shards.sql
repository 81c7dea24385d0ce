-- Ingest by shards (issue 9). Each shard of the event stream has one owner at a time, and the
-- owner records, in the transaction of each batch, the last entry id it applied from the shard.
-- An entry at or below that offset is a redelivery and changes nothing; an owner whose offset
-- moved under it (another worker took the shard over) has its transaction refused.
CREATE TABLE ingest_offsets (
    stream     TEXT NOT NULL,                     -- the entry stream's name (TRADESTORE_STREAM)
    shard      INTEGER NOT NULL CONSTRAINT ingest_offsets_shard_check CHECK (shard >= 0),
    last_id    TEXT NOT NULL DEFAULT '0-0' CONSTRAINT ingest_offsets_id_check CHECK (last_id ~ '^[0-9]+-[0-9]+$'),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, shard)
);

-- Entries a committed batch rejected, until their dead letters are written on the bus (an
-- outbox: a worker that dies in between leaves them for the shard's next owner).
CREATE TABLE ingest_rejects (
    stream      TEXT NOT NULL,
    shard       INTEGER NOT NULL,
    entry_id    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 1,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, shard, entry_id)
);

-- ingest_applied now holds only producers' event ids (and, until they expire, the per-entry
-- keys of the design before shards).
COMMENT ON TABLE ingest_applied IS 'Producer event ids already applied (event:<id>), so a repeated event changes nothing';
