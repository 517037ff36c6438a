/**
 * Terminal replay figures for `npm run bench:replay`: a 100 MB terminal recording (BENCH_TERMINAL_MB)
 * folded by ingest's real terminal transform (so the screen snapshots are the ones ingest stores:
 * every 64 KiB of output or 10 s), stored in the same chDB, then read through the listening API the
 * way the web player reads it, and drawn into a terminal emulator (@xterm/headless, the same parser
 * as the browser's xterm.js, without the DOM):
 *
 *   first frame   GET …/terminal (frame + markers) + GET …/terminal/events?at_us=0&limit=100, the
 *                 events up to the first output written and parsed
 *   seek to end   GET …/terminal/events?at_us=<duration>&limit=100 (nearest snapshot + the events
 *                 after it, paging on while they lie before the target), snapshot + events written
 *                 and parsed
 *   seek to middle  the same at half the duration
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import xtermHeadless from '@xterm/headless';
import type { ChainedEvent } from '@vigil/schemas';
import { TerminalTransform, emptyTerminalRows, DEFAULT_TERMINAL_OPTIONS } from '@vigil/ingest/transforms/terminal/terminal';

const SESSION = 'bench-terminal';
const ROW_BYTES = 4096;
const COLS = 120;
const ROWS = 40;

/** Seed the recording; returns the stored output bytes and the number of snapshots. */
export async function seedTerminal(store: ClickHouseClient, mb: number): Promise<{ bytes: number; rows: number; snapshots: number; seconds: number }> {
  const t = performance.now();
  const transform = new TerminalTransform(DEFAULT_TERMINAL_OPTIONS);
  const t0 = 1767268800000000; // 2026-01-01T12:00:00Z
  const who = { sub: 'bench', target_id: 'web-bench' };
  const ev = (seq: number, time: number, e: Record<string, unknown>) => ({ session_id: SESSION, seq, time, ...e }) as unknown as ChainedEvent;
  let out = emptyTerminalRows();
  transform.fold(ev(0, t0, { type: 'ssh.request', channel: 0, request: 'pty-req', accepted: true, cols: COLS, rows: ROWS }), who, out);
  transform.fold(ev(1, t0, { type: 'ssh.request', channel: 0, request: 'shell', accepted: true }), who, out);
  const total = Math.ceil((mb * 1024 * 1024) / ROW_BYTES);
  let snapshots = 0;
  const flush = async () => {
    await transform.settle();
    await store.insert({ table: 'terminal', values: out.terminal, format: 'JSONEachRow' });
    if (out.terminal_snapshots.length) await store.insert({ table: 'terminal_snapshots', values: out.terminal_snapshots, format: 'JSONEachRow' });
    snapshots += out.terminal_snapshots.length;
    out = emptyTerminalRows();
  };
  for (let i = 0; i < total; i++) {
    // Terminal-like output: coloured, wrapped lines of printable text (valid UTF-8), 1 ms apart.
    const text = randomBytes(ROW_BYTES).toString('base64').replace(/(.{90})/g, '\x1b[32m$1\x1b[0m\r\n').slice(0, ROW_BYTES);
    transform.fold(ev(i + 2, t0 + (i + 1) * 1000, { type: 'frame', direction: 's2c', msg_type: 'SSH_MSG_CHANNEL_DATA/0', data: Buffer.from(text) }), who, out);
    if (i % 1000 === 999) transform.fold(ev(i + 2, t0 + (i + 1) * 1000, { type: 'frame', direction: 'c2s', msg_type: 'SSH_MSG_CHANNEL_DATA/0', data: Buffer.from(`cat part-${i}\r`) }), who, out);
    if (out.terminal.length >= 2000) await flush();
  }
  await flush();
  await store.insert({ table: 'sessions', format: 'JSONEachRow', values: [{ session_id: SESSION, version: total + 3, started_at: '2026-01-01 12:00:00.000000', ended_at: '2026-01-01 12:10:00.000000', end_reason: 'client_closed', sub: 'bench', target_id: 'web-bench', protocol: 'ssh', gateway_id: 'gw' }] });
  return { bytes: total * ROW_BYTES, rows: total, snapshots, seconds: (performance.now() - t) / 1000 };
}

interface Page {
  snapshot: { cols: number; rows: number; screen: string } | null;
  events: { t_us: number; code: string; data: string }[];
  next_after_seq: number | null;
}

function write(term: InstanceType<typeof xtermHeadless.Terminal>, data: string | Uint8Array): Promise<void> {
  return new Promise((r) => term.write(data, r));
}

export async function measureTerminal(address: string, token: string, runs: number): Promise<{ name: string; ms: number[] }[]> {
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${address}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<T>;
  };
  const base = `/api/sessions/${SESSION}/terminal`;
  /** What the player does for a seek: fetch, then draw up to the target. */
  const seek = async (at: number, info: { cols: number; rows: number }) => {
    let page = await get<Page>(`${base}/events?at_us=${at}&limit=100`);
    const term = new xtermHeadless.Terminal({ cols: page.snapshot?.cols ?? info.cols, rows: page.snapshot?.rows ?? info.rows, scrollback: 0, allowProposedApi: true });
    if (page.snapshot) await write(term, page.snapshot.screen);
    let wrote = 0;
    for (;;) {
      const due = page.events.filter((e) => e.t_us <= at && e.code === 'o');
      for (const e of due) await write(term, Buffer.from(e.data, 'base64'));
      wrote += due.length;
      const beyond = page.events.some((e) => e.t_us > at);
      if (beyond || page.next_after_seq === null || (at === 0 && wrote > 0)) break;
      page = await get<Page>(`${base}/events?after_seq=${page.next_after_seq}&limit=300`);
    }
    const line = term.buffer.active.getLine(0)?.translateToString(true) ?? '';
    term.dispose();
    return line;
  };
  const cases: [string, () => Promise<unknown>][] = [
    ['terminal: time to first frame (frame + first page, drawn)', async () => {
      const info = await get<{ cols: number; rows: number }>(base);
      // The first frame: from the start, up to and including the first output.
      const line = await seek(0, info);
      return line;
    }],
    ['terminal: seek to the end (snapshot + tail, drawn)', async () => {
      const info = await get<{ cols: number; rows: number; duration_us: number }>(base);
      const line = await seek(info.duration_us, info);
      if (!line) throw new Error('seek to the end drew nothing');
    }],
    ['terminal: seek to the middle (snapshot + tail, drawn)', async () => {
      const info = await get<{ cols: number; rows: number; duration_us: number }>(base);
      await seek(Math.floor(info.duration_us / 2), info);
    }],
  ];
  const out: { name: string; ms: number[] }[] = [];
  for (const [name, f] of cases) {
    for (let i = 0; i < 3; i++) await f();
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await f();
      ms.push(performance.now() - t);
    }
    out.push({ name, ms: ms.sort((a, b) => a - b) });
  }
  return out;
}
