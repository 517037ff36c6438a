/**
 * Reads of terminal recordings for the player (plugins/terminal.ts): the recording's frame (channel,
 * size, start, end, command markers) and pages of its events, either after a seq (playing on) or
 * from the nearest stored screen snapshot before a time (seeking). Only output-side rows reach the
 * player: 'o' (output), 'r' (resize), 'm' (marker), 'x' (exit). Input ('i') is never served to it,
 * so keystrokes that the target did not echo (passwords at a prompt) do not appear in a replay.
 *
 * Times in answers are µs since the recording's start (the session's start, as in the asciicast
 * export), so the player never handles absolute 64-bit timestamps.
 */
import type { ClickHouseClient } from '@clickhouse/client';

export interface TerminalInfo {
  channel: number;
  channels: number[];
  cols: number;
  rows: number;
  start_us: number;
  /** Offset of the last stored event (grows while the session is live). */
  duration_us: number;
  live: boolean;
  snapshots: number;
  markers: { seq: number; t_us: number; label: string }[];
}

export interface TerminalEvent {
  seq: number;
  t_us: number;
  code: 'o' | 'r' | 'm' | 'x';
  /** 'o': raw output bytes, base64 (a frame may end inside a UTF-8 sequence; the terminal joins them). */
  data: string;
}

export interface TerminalSnapshot {
  seq: number;
  t_us: number;
  cols: number;
  rows: number;
  /** VT text that redraws the screen (cursor included) on a blank cols×rows terminal. */
  screen: string;
}

export interface TerminalPage {
  snapshot: TerminalSnapshot | null;
  /** Size to start from when there is no snapshot: the PTY's. */
  events: TerminalEvent[];
  /** Pass as `after_seq` for the next page; null when the stored recording ends here. */
  next_after_seq: number | null;
}

const MAX_MARKERS = 10_000;

/** The channel to replay: the given one, else the lowest one that had a PTY, else the lowest with rows. */
export async function terminalChannels(store: ClickHouseClient, id: string): Promise<number[]> {
  const r = await store.query({
    query: `SELECT channel FROM terminal WHERE session_id = {id:String} GROUP BY channel
            ORDER BY countIf(code = 'r') > 0 DESC, channel`,
    query_params: { id },
    format: 'JSONEachRow',
  });
  return (await r.json<{ channel: number }>()).map((x) => Number(x.channel));
}

export async function terminalInfo(store: ClickHouseClient, id: string, channel: number, channels: number[]): Promise<TerminalInfo | null> {
  const r = await store.query({
    query: `SELECT
              (SELECT toUnixTimestamp64Micro(min(time)) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32}) AS first_us,
              (SELECT toUnixTimestamp64Micro(max(time)) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32}) AS last_us,
              (SELECT toUnixTimestamp64Micro(min(started_at)) FROM sessions WHERE session_id = {id:String}) AS started_us,
              (SELECT countIf(isNull(ended_at)) > 0 AND countIf(isNotNull(ended_at)) = 0 FROM sessions FINAL WHERE session_id = {id:String}) AS live,
              (SELECT argMin(data, seq) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32} AND code = 'r') AS size,
              (SELECT count() FROM terminal_snapshots WHERE session_id = {id:String} AND channel = {ch:UInt32}) AS snapshots`,
    query_params: { id, ch: channel },
    format: 'JSONEachRow',
  });
  const [row] = await r.json<{ first_us: string; last_us: string; started_us: string; live: number | boolean; size: string; snapshots: string }>();
  const first = Number(row?.first_us ?? 0);
  if (!row || first === 0) return null;
  const started = Number(row.started_us ?? 0);
  const start_us = started > 0 && started <= first ? started : first;
  const m = /^(\d+)x(\d+)$/.exec(row.size ?? '');
  const mk = await store.query({
    query: `SELECT toUInt64(seq) AS s, toUnixTimestamp64Micro(time) AS t, data FROM terminal FINAL
            WHERE session_id = {id:String} AND channel = {ch:UInt32} AND code = 'm' ORDER BY s LIMIT {max:UInt32}`,
    query_params: { id, ch: channel, max: MAX_MARKERS },
    format: 'JSONEachRow',
  });
  const markers = (await mk.json<{ s: string; t: string; data: string }>()).map((x) => ({ seq: Number(x.s), t_us: Math.max(0, Number(x.t) - start_us), label: x.data }));
  return {
    channel,
    channels,
    cols: m ? Number(m[1]) : 80,
    rows: m ? Number(m[2]) : 24,
    start_us,
    duration_us: Math.max(0, Number(row.last_us) - start_us),
    live: Boolean(Number(row.live)),
    snapshots: Number(row.snapshots),
    markers,
  };
}

/** The latest snapshot taken at or before `at_us` (offset), if any. */
export async function snapshotBefore(store: ClickHouseClient, id: string, channel: number, start_us: number, at_us: number): Promise<TerminalSnapshot | null> {
  const r = await store.query({
    query: `SELECT toUInt64(seq) AS s, toUnixTimestamp64Micro(time) AS t, cols, rows, screen FROM terminal_snapshots FINAL
            WHERE session_id = {id:String} AND channel = {ch:UInt32} AND toUnixTimestamp64Micro(time) <= {at:Int64}
            ORDER BY s DESC LIMIT 1`,
    query_params: { id, ch: channel, at: String(start_us + at_us) },
    format: 'JSONEachRow',
  });
  const [row] = await r.json<{ s: string; t: string; cols: number; rows: number; screen: string }>();
  return row ? { seq: Number(row.s), t_us: Math.max(0, Number(row.t) - start_us), cols: Number(row.cols), rows: Number(row.rows), screen: row.screen } : null;
}

/**
 * Output-side rows with seq > after_seq, in seq order, at most `limit` (a page never ends between
 * two rows of one seq: an output frame and its marker share a seq).
 */
export async function eventsAfter(store: ClickHouseClient, id: string, channel: number, start_us: number, after_seq: number, limit: number): Promise<{ events: TerminalEvent[]; next_after_seq: number | null }> {
  const r = await store.query({
    // Aliases must not shadow `seq`/`time`: ClickHouse resolves aliases in WHERE and ORDER BY too.
    query: `SELECT toUInt64(seq) AS s, toUnixTimestamp64Micro(time) AS t, code, data FROM terminal FINAL
            WHERE session_id = {id:String} AND channel = {ch:UInt32} AND seq > {after:Int64} AND code IN ('o', 'r', 'm', 'x')
            ORDER BY terminal.seq, code LIMIT {limit:UInt32}`,
    query_params: { id, ch: channel, after: String(after_seq), limit: limit + 1 },
    format: 'JSONEachRow',
    // Small blocks: a granule of 8192 rows of 4 KiB frames would be ~45 MB read at once.
    clickhouse_settings: { max_block_size: '256', preferred_block_size_bytes: '1048576' },
  });
  const rows = await r.json<{ s: string; t: string; code: TerminalEvent['code']; data: string }>();
  let page = rows.slice(0, limit);
  const more = rows.length > limit;
  if (more && page.length > 0 && rows[limit]!.s === page[page.length - 1]!.s) {
    // The extra row shares the last seq: end the page before that seq (unless it is the only one).
    const last = page[page.length - 1]!.s;
    const trimmed = page.filter((x) => x.s !== last);
    if (trimmed.length > 0) page = trimmed;
  }
  const events = page.map((x) => ({ seq: Number(x.s), t_us: Math.max(0, Number(x.t) - start_us), code: x.code, data: x.data }));
  return { events, next_after_seq: more ? (events.at(-1)?.seq ?? after_seq) : null };
}
