/**
 * `GET /api/sessions/:id/asciicast?version=2|3[&channel=N]`: a terminal recording in asciicast
 * format (https://docs.asciinema.org/manual/asciicast/v2/ and …/v3/), streamed row by row from the
 * `terminal` table, so a recording of any size is never held in memory (bench:ssh-export).
 *
 * - v2: header {version, width, height, timestamp}; events [seconds since start, code, data].
 * - v3: header {version, term: {cols, rows}, timestamp}; events [seconds since the previous event,
 *   code, data]; exit events `x` carry the status.
 * `o`/`i` rows hold raw bytes (base64); they are decoded with one streaming UTF-8 decoder per
 * direction, so a character split across two frames is emitted whole. `r` is "COLSxROWS", `m` a
 * marker label (commands, blocks). The first resize (the PTY request) becomes the header size.
 * Channel: the given one, else the lowest channel that had a PTY, else the lowest with rows.
 */
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { ClickHouseClient } from '@clickhouse/client';
import { definePlugin } from '../plugin.ts';
import type { AccessAudit } from '../access-audit.ts';
import { apiError } from '../errors.ts';
import { SessionParamsSchema, withProblems } from '../schemas.ts';
import { storeFailure } from './problems.ts';
import type { Role } from './auth.ts';

const READ_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];
/** Rows per store query while streaming. */
const PAGE_ROWS = 500;

export const AsciicastQuerySchema = Type.Object(
  {
    version: Type.Union([Type.Literal(2), Type.Literal(3)], { default: 2 }),
    channel: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff })),
  },
  { additionalProperties: false },
);

interface Row {
  seq_text: string;
  code: 'o' | 'i' | 'r' | 'm' | 'x';
  t: string;
  data: string;
}

async function pickChannel(store: ClickHouseClient, id: string): Promise<number | undefined> {
  const r = await store.query({
    query: `SELECT channel FROM terminal WHERE session_id = {id:String} GROUP BY channel
            ORDER BY countIf(code = 'r') > 0 DESC, channel LIMIT 1`,
    query_params: { id },
    format: 'JSONEachRow',
  });
  const rows = await r.json<{ channel: number }>();
  return rows[0]?.channel;
}

/** The header's size and start: the first resize of the channel, the session start. */
async function headerInfo(store: ClickHouseClient, id: string, channel: number): Promise<{ cols: number; rows: number; start_us: number; resize_seq?: string }> {
  const r = await store.query({
    query: `SELECT
              (SELECT toUnixTimestamp64Micro(min(time)) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32}) AS first_us,
              (SELECT toUnixTimestamp64Micro(min(started_at)) FROM sessions WHERE session_id = {id:String}) AS started_us,
              (SELECT argMin(data, seq) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32} AND code = 'r') AS size,
              (SELECT minOrNull(seq) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32} AND code = 'r') AS resize_seq,
              (SELECT minOrNull(seq) FROM terminal WHERE session_id = {id:String} AND channel = {ch:UInt32} AND code IN ('o', 'i')) AS first_io_seq`,
    query_params: { id, ch: channel },
    format: 'JSONEachRow',
  });
  const [row] = await r.json<{ first_us: string; started_us: string; size: string; resize_seq: string | number | null; first_io_seq: string | number | null }>();
  const m = /^(\d+)x(\d+)$/.exec(row?.size ?? '');
  const started = Number(row?.started_us ?? 0);
  const first = Number(row?.first_us ?? 0);
  const start_us = started > 0 && started <= first ? started : first;
  // The PTY's size is the header's; a resize after output has started stays an event.
  const resizeSeq = row?.resize_seq ?? null;
  const firstIo = row?.first_io_seq ?? null;
  const leading = m !== null && resizeSeq !== null && (firstIo === null || BigInt(resizeSeq) < BigInt(firstIo));
  return { cols: m ? Number(m[1]) : 80, rows: m ? Number(m[2]) : 24, start_us, ...(leading ? { resize_seq: String(resizeSeq) } : {}) };
}

/** Lines of the recording, built as the rows stream in. */
export async function* asciicastLines(
  rows: AsyncIterable<Row>,
  version: 2 | 3,
  header: { cols: number; rows: number; start_us: number; resize_seq?: string },
): AsyncGenerator<string> {
  const timestamp = Math.floor(header.start_us / 1e6);
  yield version === 2
    ? JSON.stringify({ version: 2, width: header.cols, height: header.rows, timestamp }) + '\n'
    : JSON.stringify({ version: 3, term: { cols: header.cols, rows: header.rows }, timestamp }) + '\n';
  const decoders = { o: new TextDecoder('utf-8'), i: new TextDecoder('utf-8') };
  let prevUs = header.start_us;
  const seconds = (us: number): number => Math.max(0, Math.round(us) / 1e6);
  for await (const r of rows) {
    if (r.code === 'r' && header.resize_seq !== undefined && r.seq_text === header.resize_seq) continue;
    if (r.code === 'x' && version === 2) continue; // v2 has no exit event
    const t = Number(r.t);
    let data = r.data;
    if (r.code === 'o' || r.code === 'i') {
      data = decoders[r.code].decode(Buffer.from(r.data, 'base64'), { stream: true });
      if (data === '') continue;
    }
    const time = version === 2 ? seconds(t - header.start_us) : seconds(t - prevUs);
    prevUs = Math.max(prevUs, t);
    yield JSON.stringify([time, r.code, data]) + '\n';
  }
}

export const asciicastPlugin = definePlugin<{ store: ClickHouseClient; audit?: AccessAudit | undefined }>(
  async (app, { store, audit }) => {
    app.get<{ Params: { id: string }; Querystring: { version: 2 | 3; channel?: number } }>(
      '/api/sessions/:id/asciicast',
      {
        config: { roles: READ_ROLES },
        // 200 is a stream (application/x-asciicast, newline-delimited JSON): no JSON schema applies.
        schema: { params: SessionParamsSchema, querystring: AsciicastQuerySchema, response: withProblems({}) },
      },
      async (request, reply) => {
        const { id } = request.params;
        const { version } = request.query;
        audit?.assertAvailable(); // no unaudited export
        let channel: number | undefined;
        let header: Awaited<ReturnType<typeof headerInfo>>;
        try {
          channel = request.query.channel ?? (await pickChannel(store, id));
          if (channel === undefined) throw apiError('API_ERR_NOT_FOUND', 'no terminal recording for this session');
          header = await headerInfo(store, id, channel);
          if (header.start_us === 0) throw apiError('API_ERR_NOT_FOUND', 'no terminal recording on this channel');
        } catch (err) {
          if ((err as { code?: string }).code?.startsWith('API_ERR_')) throw err;
          throw storeFailure(err);
        }
        // Keyset pages (seq > last) rather than one result stream: the embedded engine (chDB)
        // materialises a whole result before handing it over, so one query for a 100 MB recording
        // would hold it all; a page of PAGE_ROWS frames (≤ 32 KiB each from OpenSSH) stays small.
        async function* rows(): AsyncGenerator<Row> {
          let after = -1n;
          for (;;) {
            let page: Row[];
            try {
              const result = await store.query({
                // Aliases must not shadow `seq`: ORDER BY would then sort the text ('10' < '9').
                query: `SELECT toString(seq) AS seq_text, code, toString(toUnixTimestamp64Micro(time)) AS t, data
                        FROM terminal FINAL
                        WHERE session_id = {id:String} AND channel = {ch:UInt32} AND seq > {after:Int64}
                        ORDER BY terminal.seq, code LIMIT {limit:UInt32}`,
                query_params: { id, ch: channel, after: after.toString(), limit: PAGE_ROWS },
                format: 'JSONEachRow',
                // Read in small blocks: a granule of 8192 rows of 4 KiB frames would be ~45 MB at once.
                clickhouse_settings: { max_block_size: '256', preferred_block_size_bytes: '1048576' },
              });
              page = await result.json<Row>();
            } catch (err) {
              // Headers are gone already: end the stream early (the client sees a short file) and log.
              request.log.error({ err: (err as Error).message, session_id: id }, 'asciicast export: store failed mid-stream');
              return;
            }
            if (page.length === 0) return;
            // A page may end between two rows of one seq (o/m share a seq); re-read from that seq.
            const lastSeq = BigInt(page[page.length - 1]!.seq_text);
            const complete = page.length < PAGE_ROWS ? page : page.filter((r) => BigInt(r.seq_text) < lastSeq);
            const rowsOut = complete.length > 0 ? complete : page;
            yield* rowsOut;
            if (page.length < PAGE_ROWS) return;
            after = complete.length > 0 ? lastSeq - 1n : lastSeq;
          }
        }
        // An export is a view of the recording (issue 6, access audit): recorded before streaming starts.
        audit?.recordView({ identity: request.identity!, viewed_session_id: id, view: 'export', route: 'GET /api/sessions/:id/asciicast', client_addr: `${request.ip}:${request.socket.remotePort ?? 0}` });
        reply.header('content-type', version === 3 ? 'application/x-asciicast; version=3' : 'application/x-asciicast');
        reply.header('content-disposition', `attachment; filename="${id.replace(/[^A-Za-z0-9._-]/g, '_')}.cast"`);
        return reply.send(Readable.from(asciicastLines(rows(), version, header)));
      },
    );
  },
  { name: 'vigil-asciicast', dependencies: ['vigil-problems', 'vigil-auth'] },
);
