-- Detection state and alerts (issue 5; docs/detection.md). Applied after 001_tables.sql.
--
-- Why the state lives here: sessions are partitioned by session id across ingest instances, but
-- baselines are per identity. An identity's sessions land on several instances at once, so no
-- instance's memory can hold its baseline. ClickHouse is already the one store every instance
-- writes to: the baselines below are aggregates maintained by materialized views over the rows
-- ingest writes anyway (or by the detect transform itself for facts the base tables lack), and the
-- detectors read them back per batch. They survive restarts and are shared by construction.

-- Alerts. ReplacingMergeTree on the deterministic alert_id: a redelivered batch collapses.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id    String,
    time        DateTime64(6, 'UTC'),
    rule        LowCardinality(String),
    severity    LowCardinality(String),
    sub         String,
    groups      Array(String),
    session_id  String,
    target_id   LowCardinality(String),
    summary     String,
    evidence    Array(String),
    facts       String,
    dedupe_key  String,
    INDEX idx_time time TYPE minmax GRANULARITY 4,
    INDEX idx_sub sub TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY alert_id;

-- Facts per identity: "first/last seen" of a value of some kind. Kinds:
--   addr   client address (host part) the identity connected from      (MV from sessions)
--   app    client application / user agent                              (MV from sessions)
--   table  relation the identity accessed                               (detect transform)
--   role_table relation accessed by any member of a group; sub = group  (detect transform)
--   approved   sub approved a request of `value`                        (detect transform)
--   denied     sub was denied the statement whose fingerprint is value  (detect transform)
-- min/max/sum are insensitive to re-insertion order, so redelivery cannot corrupt first_seen.
CREATE TABLE IF NOT EXISTS detect_facts
(
    kind        LowCardinality(String),
    sub         String,
    value       String,
    first_seen  SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_seen   SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    n           SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (kind, sub, value);

CREATE MATERIALIZED VIEW IF NOT EXISTS detect_facts_addr_mv TO detect_facts AS
SELECT 'addr' AS kind, sub, replaceRegexpOne(client_addr, ':[0-9]+$', '') AS value,
       started_at AS first_seen, started_at AS last_seen, toUInt64(1) AS n
FROM sessions WHERE sub != '' AND client_addr != '' AND ended_at IS NULL;

CREATE MATERIALIZED VIEW IF NOT EXISTS detect_facts_app_mv TO detect_facts AS
SELECT 'app' AS kind, sub, client_app AS value,
       started_at AS first_seen, started_at AS last_seen, toUInt64(1) AS n
FROM sessions WHERE sub != '' AND client_app != '' AND ended_at IS NULL;

-- Per identity and hour: statements, rows, bytes, errors, and the largest single statement.
-- The bulk-read baseline is a quantile of past hours (window) and of past statements' maxima.
CREATE TABLE IF NOT EXISTS detect_hourly
(
    sub         String,
    hour        DateTime('UTC'),
    statements  SimpleAggregateFunction(sum, UInt64),
    rows        SimpleAggregateFunction(sum, UInt64),
    bytes       SimpleAggregateFunction(sum, UInt64),
    errors      SimpleAggregateFunction(sum, UInt64),
    max_rows    SimpleAggregateFunction(max, UInt64),
    max_bytes   SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (sub, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS detect_hourly_mv TO detect_hourly AS
SELECT sub, toStartOfHour(time) AS hour, toUInt64(1) AS statements, rows, bytes,
       toUInt64(sqlstate != '') AS errors, rows AS max_rows, bytes AS max_bytes
FROM queries WHERE sub != '';
