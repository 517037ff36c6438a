-- Vigil analytics store. Applied in file order on start by ingest and api (statements are
-- idempotent: IF NOT EXISTS). The same DDL runs on chDB (embedded) and ClickHouse server.
--
-- Idempotency: every table is a ReplacingMergeTree whose sorting key is the event's identity
-- (session_id, seq), so a batch redelivered after a crash between insert and offset commit
-- collapses to one row. Readers use FINAL (or argMax) where exact counts matter.

CREATE TABLE IF NOT EXISTS sessions
(
    session_id    String,
    -- Row version: the seq of the latest event folded into this row (start < … < end).
    version       UInt64,
    started_at    DateTime64(6, 'UTC'),
    ended_at      Nullable(DateTime64(6, 'UTC')),
    sub           String,
    groups        Array(String),
    issuer        String,
    actor_kind    LowCardinality(String),
    client_addr   String,
    client_app    String,
    target_id     LowCardinality(String),
    protocol      LowCardinality(String),
    target_addr   String,
    db_name       String,
    db_user       String,
    gateway_id    LowCardinality(String),
    tls           Bool,
    upstream_tls  Bool,
    -- '' while live; then an EndReason (client_closed, auth_failed, refused, …)
    end_reason    LowCardinality(String),
    end_detail    String,
    duration_us   UInt64,
    bytes_c2s     UInt64,
    bytes_s2c     UInt64,
    messages_c2s  UInt64,
    messages_s2c  UInt64,
    last_hash     String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY session_id;

-- Every chained event of every session, frames included, without payload bytes (raw frames do
-- not land unmasked in the analytics store). `detail` holds the non-envelope members of
-- non-frame events as JSON.
CREATE TABLE IF NOT EXISTS events
(
    session_id  String,
    seq         UInt64,
    event_id    String,
    type        LowCardinality(String),
    time        DateTime64(6, 'UTC'),
    sub         String,
    target_id   LowCardinality(String),
    direction   LowCardinality(String),
    msg_type    LowCardinality(String),
    size        UInt32,
    prev_hash   String,
    hash        String,
    detail      String,
    INDEX idx_time time TYPE minmax GRANULARITY 4,
    INDEX idx_sub sub TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY (session_id, seq);

-- Decoded PostgreSQL statements: one row per simple Query message (a multi-statement string is
-- one row: full text, command tags joined by '; ', rows summed) and one per extended Execute (or
-- failed Parse/Bind). Keyed by the seq of the frame that carried the request.
--
-- Version = statement_known: 1 when ingest saw the request that defined the statement, 0 when it
-- re-decoded from an offset after the Parse (restart mid-session; statement text ''). A partial
-- re-decode of a (session_id, seq) therefore never replaces the complete row.
CREATE TABLE IF NOT EXISTS queries
(
    session_id      String,
    seq             UInt64,
    end_seq         UInt64,
    event_id        String,
    time            DateTime64(6, 'UTC'),
    duration_us     UInt64,
    sub             String,
    target_id       LowCardinality(String),
    protocol_kind   LowCardinality(String),
    statement       String,
    statement_name  String,
    params          Array(Nullable(String)),
    command_tag     String,
    rows            UInt64,
    bytes           UInt64,
    sqlstate        String,
    error           String,
    statement_known UInt8 DEFAULT 1,
    INDEX idx_time time TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree(statement_known)
ORDER BY (session_id, seq);
