-- Terminal recordings (SSH), in asciicast terms. Written by ingest's terminal transform
-- (ingest/src/transforms/terminal/), read by the API's asciicast export.
--
-- `terminal`: one row per output/input frame ('o' target→client incl. stderr and gateway notices,
-- 'i' client→target), resize ('r', data "COLSxROWS"), marker ('m', data = label: commands, blocks)
-- and exit ('x', data = status). `data` of 'o'/'i' is the raw bytes, base64: a frame may end inside a
-- UTF-8 sequence, so text is decoded at export with one streaming decoder per channel.
-- Keyed (session_id, seq, code): a frame's 'i' row and its command marker share a seq.
CREATE TABLE IF NOT EXISTS terminal
(
    session_id  String,
    seq         UInt64,
    code        LowCardinality(String),
    channel     UInt32,
    time        DateTime64(6, 'UTC'),
    data        String
)
ENGINE = ReplacingMergeTree
ORDER BY (session_id, seq, code);

-- Periodic screen snapshots from a headless terminal (@xterm/headless + serialize addon) every
-- N KiB of output or T seconds, so a player can seek without replaying from the start: write
-- `screen` (VT text that redraws the screen, cursor included) into a cols×rows terminal, then play
-- the 'o' rows with seq > this seq.
CREATE TABLE IF NOT EXISTS terminal_snapshots
(
    session_id    String,
    channel       UInt32,
    seq           UInt64,
    time          DateTime64(6, 'UTC'),
    cols          UInt32,
    rows          UInt32,
    output_bytes  UInt64,
    screen        String
)
ENGINE = ReplacingMergeTree
ORDER BY (session_id, channel, seq);

-- Command lines: exec commands exactly as sent, and lines entered in an interactive shell as
-- reconstructed from the input (best effort, see docs/ssh.md); blocked ones from policy.blocked.
CREATE TABLE IF NOT EXISTS commands
(
    session_id  String,
    seq         UInt64,
    channel     UInt32,
    time        DateTime64(6, 'UTC'),
    sub         String,
    target_id   LowCardinality(String),
    source      LowCardinality(String),
    line        String,
    uncertain   Bool,
    blocked     Bool,
    rule_id     String,
    INDEX idx_line line TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY (session_id, seq, source);
