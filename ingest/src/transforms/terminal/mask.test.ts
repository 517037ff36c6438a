/**
 * Terminal masking (issue 4): values printed or typed are masked before storage even when split
 * across frames and across log batches; what is held back comes out at the next chunk or the
 * channel's end; ordinary output (lines, prompts) is not held; a rejected batch re-yields the same
 * rows. Through the TerminalTransform with a plan compiled from a real policy by the real engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionChain, decode, type ChainedEvent, type ChainInput } from '@vigil/schemas';
import { loadPolicy } from '@vigil/gateway/policy/index';
import { createMaskEngine } from '@vigil/gateway/mask/engine';
import { flushChunk, holdFrom, maskText, pushChunk, type StreamMaskState } from './mask.ts';
import { TerminalTransform, emptyTerminalRows, type TerminalRows } from './terminal.ts';

const policy = loadPolicy(`version: 1
rules:
  - id: secrets
    mask: { detectors: [card, api_key, private_key], strategy: redact }
`);
const plan = createMaskEngine().plan(policy.masks);

const CARD = '4111 1111 1111 1111';
const KEY = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n';
const bytes = (s: string) => Buffer.from(s, 'latin1');

/** Push chunks through one stream, then flush; returns the concatenated stored text. */
function stream(chunks: string[]): { stored: string; perChunk: string[] } {
  const st: StreamMaskState = { held: '' };
  const perChunk = chunks.map((c) => pushChunk(st, plan, bytes(c)).toString('latin1'));
  perChunk.push(flushChunk(st, plan).toString('latin1'));
  return { stored: perChunk.join(''), perChunk };
}

test('holdFrom: a partial value is held; finished lines, prompts and escapes are not', () => {
  assert.equal(holdFrom('total 3\r\n'), 9);
  assert.equal(holdFrom('alice@web-1:~$ '), 'alice@web-1:~$'.length, 'a prompt holds at most its trailing space');
  assert.equal(holdFrom('card: 4111 1111 '), 0, 'digit groups, and a name followed by a colon');
  assert.equal(holdFrom('x\n4111 1111 '), 2);
  assert.equal(holdFrom('ok\r\nsk_live_4eC3'), 4);
  assert.equal(holdFrom('y\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n'), 2, 'an unterminated PEM block from its BEGIN');
  assert.equal(holdFrom('\x1b[0m\r\n'), 6);
});

test('a card split in two, three and nineteen chunks is stored masked; no digit group of it survives', () => {
  for (const chunks of [
    ['pay with 4111 1111 ', '1111 1111 now\r\n'],
    ['4111 11', '11 1111 1', '111\r\n$ '],
    [...`${CARD}\r\n`].map((c) => c),
  ]) {
    const { stored } = stream(chunks);
    assert.ok(stored.includes('[REDACTED:card]'), stored);
    assert.ok(!/\d{4}/.test(stored), `no 4-digit group left: ${JSON.stringify(stored)}`);
  }
});

test('an API key and a PEM private key split across chunks are masked; surrounding text is kept byte for byte', () => {
  const key = stream([`export TOKEN=${KEY.slice(0, 11)}`, `${KEY.slice(11)}\r\n`, 'done\r\n']);
  assert.equal(key.stored, 'export TOKEN=[REDACTED:api_key]\r\ndone\r\n');
  const half = Math.floor(PEM.length / 2);
  const pem = stream(['$ cat id_rsa\r\n', PEM.slice(0, half), PEM.slice(half), 'é\xff\r\n']);
  assert.ok(!pem.stored.includes('MIIE'), pem.stored);
  assert.ok(pem.stored.startsWith('$ cat id_rsa\r\n[REDACTED:private_key]'));
  assert.ok(pem.stored.endsWith('\xe9\xff\r\n'), 'non-ASCII bytes outside a value are unchanged');
});

test('ordinary output is emitted at once: nothing is held after a line break or a prompt', () => {
  const { perChunk } = stream(['hello world\r\n', 'alice@web-1:~$ ']);
  assert.deepEqual(perChunk, ['hello world\r\n', 'alice@web-1:~$', ' ']);
});

test('hold_max_bytes bounds what is held', () => {
  const st: StreamMaskState = { held: '' };
  const out = pushChunk(st, plan, bytes('a'.repeat(100)), 16);
  assert.equal(out.length, 84);
  assert.equal(st.held.length, 16);
});

test('maskText: a null strategy becomes a placeholder (a terminal has no NULL)', () => {
  const p = createMaskEngine().plan(loadPolicy(`version: 1\nrules:\n  - id: n\n    mask: { detectors: [card], strategy: "null" }\n`).masks);
  assert.equal(maskText(p, `card ${CARD} end`), 'card [REDACTED:card] end');
});

// ---- through the terminal transform ----------------------------------------------------------

function session(outputs: string[], inputs: string[] = []): ChainedEvent[] {
  const chain = new SessionChain('term-mask', { gateway_id: 'gw', gateway_version: '0.1.0' });
  const events: ChainedEvent[] = [];
  let t = 1_700_000_000_000_000;
  const push = (input: Record<string, unknown>) => events.push(decode(chain.next({ ...input, time: (t += 1000) } as unknown as ChainInput).bytes) as ChainedEvent);
  push({ type: 'ssh.request', version: 1, channel: 0, request: 'pty-req', accepted: true, cols: 80, rows: 24, term: 'xterm' });
  push({ type: 'ssh.request', version: 1, channel: 0, request: 'shell', accepted: true });
  for (let i = 0; i < Math.max(outputs.length, inputs.length); i++) {
    if (inputs[i] !== undefined) push({ type: 'frame', version: 1, direction: 'c2s', msg_type: 'SSH_MSG_CHANNEL_DATA/0', data: bytes(inputs[i]!) });
    if (outputs[i] !== undefined) push({ type: 'frame', version: 1, direction: 's2c', msg_type: 'SSH_MSG_CHANNEL_DATA/0', data: bytes(outputs[i]!) });
  }
  push({ type: 'ssh.channel', version: 1, channel: 0, action: 'closed' });
  return events;
}

const text = (rows: TerminalRows, code: 'o' | 'i') => rows.terminal.filter((r) => r.code === code).sort((a, b) => a.seq - b.seq).map((r) => Buffer.from(r.data, 'base64').toString('latin1')).join('');

test('terminal transform: output, input, command lines and snapshots are masked; a value split across batches too', async () => {
  const t = new TerminalTransform({ snapshot_every_bytes: 1, snapshot_every_us: 1e12 });
  const events = session(['$ ', 'e', 'c', `ho ${CARD.slice(0, 7)}`, `${CARD.slice(7)}\r\n${CARD.slice(0, 9)}`, `${CARD.slice(9)}\r\n$ `], [...`echo ${CARD}\r`]);
  const rows = emptyTerminalRows();
  // Two batches, cut in the middle of the printed card.
  const cut = events.findIndex((e) => e.type === 'frame' && e.direction === 's2c' && Buffer.from(e.data).toString('latin1').includes('\r\n4111'));
  for (const e of events.slice(0, cut + 1)) t.fold(e, { sub: 'u', target_id: 'web-1' }, rows, plan);
  await t.settle();
  for (const e of events.slice(cut + 1)) t.fold(e, { sub: 'u', target_id: 'web-1' }, rows, plan);
  await t.settle();
  const out = text(rows, 'o');
  const input = text(rows, 'i');
  for (const [what, s] of [['output', out], ['input', input], ['commands', JSON.stringify(rows.commands)], ['markers', JSON.stringify(rows.terminal.filter((r) => r.code === 'm'))], ['snapshots', JSON.stringify(rows.terminal_snapshots)]] as const) {
    assert.ok(!/\d{4}/.test(s.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+/g, '').replace(/"(seq|output_bytes|cols|rows|channel)":\d+/g, '')), `${what}: ${s}`);
  }
  assert.equal(out, '$ echo [REDACTED:card]\r\n[REDACTED:card]\r\n$ ');
  assert.equal(input, 'echo [REDACTED:card]\r');
  assert.deepEqual(rows.commands.map((c) => c.line), ['echo [REDACTED:card]']);
  assert.ok(rows.terminal_snapshots.length > 0);
});

test('terminal transform: a rejected batch restored with restoreMask yields the same rows again', async () => {
  const events = session(['$ ', `${KEY.slice(0, 12)}`, `${KEY.slice(12)}\r\n`]);
  const t = new TerminalTransform();
  const first = emptyTerminalRows();
  for (const e of events.slice(0, 3)) t.fold(e, { sub: 'u', target_id: 'w' }, first, plan);
  const before = t.maskState('term-mask');
  const attempt = emptyTerminalRows();
  for (const e of events.slice(3)) t.fold(e, { sub: 'u', target_id: 'w' }, attempt, plan);
  t.restoreMask('term-mask', before); // the batch was rejected
  const again = emptyTerminalRows();
  for (const e of events.slice(3)) t.fold(e, { sub: 'u', target_id: 'w' }, again, plan);
  await t.settle();
  assert.deepEqual(again.terminal.filter((r) => r.code === 'o'), attempt.terminal.filter((r) => r.code === 'o'));
  assert.equal(text(first, 'o') + text(again, 'o'), '$ [REDACTED:api_key]\r\n');
  // Without a rollback a redelivered event yields no second output row (its row is stored already).
  const redelivered = emptyTerminalRows();
  t.fold(events[4]!, { sub: 'u', target_id: 'w' }, redelivered, plan);
  assert.equal(redelivered.terminal.length, 0);
});
