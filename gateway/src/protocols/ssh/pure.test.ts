/** The SSH gateway's pure cores: line editor, command segments and policy, SFTP/SCP observers, login names, pinned keys. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ssh2 from 'ssh2';
import { LineEditor } from './line-editor.ts';
import { splitSegments, commandContext, judgeCommand, judgeChannel } from './commands.ts';
import { SftpObserver, SSH_FXP, type FileOp } from './sftp.ts';
import { ScpObserver, scpMode } from './scp.ts';
import { parseLoginName } from './login.ts';
import { parsePinnedKeys, isPinned, hostKeyAlgorithms } from './host-keys.ts';
import { loadPolicy } from '../../policy/index.ts';

const lines = (input: string | Buffer[]): string[] => {
  const ed = new LineEditor();
  const chunks = typeof input === 'string' ? [Buffer.from(input)] : input;
  return chunks.flatMap((c) => ed.push(c).map((l) => l.line));
};

test('line editor: printable, backspace, Ctrl-U/W/K/A/E, arrows, paste, Ctrl-C, UTF-8 across chunks', () => {
  assert.deepEqual(lines('ls -l\r'), ['ls -l']);
  assert.deepEqual(lines('rm -rx\x7ff /\r'), ['rm -rf /']);
  assert.deepEqual(lines('echo hi\x15rm -rf /\r'), ['rm -rf /']);
  assert.deepEqual(lines('rm -rf /tmp/a\x17/\r'), ['rm -rf /']);
  assert.deepEqual(lines('rm -rf / && echo\x0b\r'), ['rm -rf / && echo']);
  assert.deepEqual(lines('-rf /\x01rm \x05\r'), ['rm -rf /']);
  assert.deepEqual(lines('rm -f /\x1b[D\x1b[D\x1b[Dr\r'), ['rm -rf /']);
  assert.deepEqual(lines('\x1b[200~rm -rf /\x1b[201~\r'), ['rm -rf /']);
  assert.deepEqual(lines('\x1b[200~a\rb\x1b[201~\r'), ['a\nb'], 'a pasted newline does not end the line');
  assert.deepEqual(lines('rm -rf /\x03echo ok\r'), ['echo ok']);
  const e = Buffer.from('echo é\r');
  assert.deepEqual(lines([e.subarray(0, 6), e.subarray(6)]), ['echo é']);
  const ed = new LineEditor();
  assert.equal(ed.push(Buffer.from('\x1b[Aecho\r'))[0]!.uncertain, true, 'history makes the line uncertain');
  assert.equal(ed.push(Buffer.from('ls\r'))[0]!.uncertain, false);
  const pos = new LineEditor().push(Buffer.from('ab\rcd\r'));
  assert.deepEqual(pos.map((l) => [l.enter, l.end]), [[2, 3], [5, 6]]);
});

test('line editor without a terminal (literal): bytes are text as the shell will read them, only LF ends a line', () => {
  const ed = new LineEditor(undefined, true);
  const got = ed.push(Buffer.from('rm -rf /x \x15\r\nls\x7f\n\x1b[200~a\n'));
  assert.deepEqual(got.map((l) => l.line), ['rm -rf /x \x15\r', 'ls\x7f', '\x1b[200~a']);
  assert.deepEqual(got.map((l) => [l.enter, l.end]), [[12, 13], [16, 17], [24, 25]]);
  assert.ok(got.every((l) => !l.uncertain && !l.truncated));
  // As bash reads a script: NUL bytes are skipped, a backslash-newline joins two lines.
  const joined = new LineEditor(undefined, true).push(Buffer.from('r\0m -r\\\nf /x\necho a\\\\\nls\n'));
  assert.deepEqual(joined.map((l) => l.line), ['rm -rf /x', 'echo a\\\\', 'ls']);
});

test('line editor: a UTF-8 sequence cut by a line end does not eat the next line\'s start; an over-long line is marked truncated', () => {
  for (const literal of [false, true]) {
    const got = new LineEditor(undefined, literal).push(Buffer.concat([Buffer.from('echo '), Buffer.from([0xe2, 0x80]), Buffer.from(literal ? '\nrm -rf /x\n' : '\rrm -rf /x\r')]));
    assert.equal(got[1]!.line, 'rm -rf /x', `literal=${literal}`);
  }
  const ed = new LineEditor(16);
  const [long, next] = ed.push(Buffer.from(': ' + 'A'.repeat(20) + '; rm -rf /x\rls\r'));
  assert.equal(long!.truncated, true);
  assert.equal(long!.line.length, 16);
  assert.equal(next!.truncated, false);
});

test('segments: split at ; && || | & and newlines outside quotes, blanks collapsed', () => {
  assert.deepEqual(splitSegments('cd /  &&  rm   -rf x; ls | wc -l & echo "a;b" \'c|d\''), ['cd /', 'rm -rf x', 'ls', 'wc -l', 'echo "a;b" \'c|d\'']);
  assert.deepEqual(splitSegments('a || b\nc'), ['a', 'b', 'c']);
  const p = loadPolicy(`version: 1
rules:
  - id: no-rm
    match: { commands: ["rm -rf *"] }
    block: true
  - id: sftp-off
    match: { channels: [sftp] }
    block: { message: no file transfers }
  - id: tunnels
    match: { groups: [sre], channels: [direct-tcpip] }
    allow: true
`);
  const alice = { sub: 'alice', groups: ['dev'], actor_kind: 'human' as const };
  const sre = { sub: 'sam', groups: ['sre'], actor_kind: 'human' as const };
  const v = judgeCommand(p, alice, 'web-1', commandContext('exec', 'cd / && rm  -rf x'));
  assert.equal(v.decision.action, 'block');
  assert.equal(v.message, 'command blocked by policy rule "no-rm"');
  assert.equal(judgeCommand(p, alice, 'web-1', commandContext('exec', 'echo "rm -rf x"')).decision.action, 'allow', 'quoted text is one segment');
  assert.equal(judgeChannel(p, alice, 'web-1', commandContext('sftp', 'sftp'), false).allowed, false);
  assert.equal(judgeChannel(p, alice, 'web-1', commandContext('direct-tcpip', 'db:5432'), true).allowed, false, 'default-deny without a rule');
  assert.equal(judgeChannel(p, sre, 'web-1', commandContext('direct-tcpip', 'db:5432'), true).allowed, true);
  assert.equal(judgeChannel(undefined, sre, 'web-1', commandContext('x11', ''), true).allowed, false, 'no policy: still refused');
  // Command conditions never match SQL statements, and limits cannot depend on them.
  assert.throws(() => loadPolicy('version: 1\nrules:\n  - id: x\n    match: { commands: ["a"] }\n    limits: { max_duration_s: 5 }\n'), /limits/);
});

function packet(type: number, id: number, ...fields: (Buffer | number | string)[]): Buffer {
  const parts = fields.map((f) => {
    if (typeof f === 'number') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(f);
      return b;
    }
    const v = typeof f === 'string' ? Buffer.from(f) : f;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(v.length);
    return Buffer.concat([len, v]);
  });
  const idb = Buffer.alloc(4);
  idb.writeUInt32BE(id);
  const body = Buffer.concat([Buffer.from([type]), idb, ...parts]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

test('SFTP observer: open/write/close → upload with bytes; split packets; oversized packet stops observing only', () => {
  const ops: FileOp[] = [];
  const o = new SftpObserver((op) => ops.push(op));
  const h = Buffer.from('h1');
  const stream = Buffer.concat([packet(SSH_FXP.OPEN, 1, '/tmp/x', 0x1a, 0), packet(SSH_FXP.WRITE, 2, h, 0, 0, Buffer.alloc(1000)), packet(SSH_FXP.CLOSE, 3, h)]);
  for (let i = 0; i < stream.length; i += 7) o.push('c2s', stream.subarray(i, i + 7)); // torn everywhere
  o.push('s2c', packet(SSH_FXP.HANDLE, 1, h));
  o.push('s2c', packet(SSH_FXP.STATUS, 3, 0));
  // WRITE arrived before HANDLE in this artificial order, so it was not counted: close still reports the file.
  assert.equal(ops.length, 1);
  assert.equal(ops[0]!.path, '/tmp/x');
  const o2ops: FileOp[] = [];
  const o2 = new SftpObserver((op) => o2ops.push(op));
  o2.push('c2s', packet(SSH_FXP.OPEN, 1, '/tmp/y', 0x1a, 0));
  o2.push('s2c', packet(SSH_FXP.HANDLE, 1, h));
  o2.push('c2s', Buffer.concat([packet(SSH_FXP.WRITE, 2, h, 0, 0, Buffer.alloc(5000)), packet(SSH_FXP.CLOSE, 3, h)]));
  o2.push('s2c', packet(SSH_FXP.STATUS, 3, 0));
  assert.deepEqual(o2ops, [{ op: 'open', path: '/tmp/y', direction: 'upload', bytes: 5000, status: 0 }]);
  const big = Buffer.alloc(8);
  big.writeUInt32BE(64 * 1024 * 1024);
  assert.doesNotThrow(() => o2.push('c2s', big));
});

test('SCP: mode from the command, C lines name files and sizes, data skipped', () => {
  assert.equal(scpMode('scp -t /tmp'), 'to');
  assert.equal(scpMode('/usr/bin/scp -r -f /etc/hosts'), 'from');
  assert.equal(scpMode('echo scp -t'), undefined);
  const ops: FileOp[] = [];
  const o = new ScpObserver('to', 'scp -t /dst', (op) => ops.push(op));
  o.push('c2s', Buffer.from('C0644 5 a.txt\nhello\0D0755 0 sub\nC0600 3 b\nxyz\0E\n'));
  assert.deepEqual(ops, [
    { op: 'open', path: '/dst/a.txt', direction: 'upload', bytes: 5 },
    { op: 'open', path: '/dst/sub/b', direction: 'upload', bytes: 3 },
  ]);
});

test('login names and pinned host keys', () => {
  assert.deepEqual(parseLoginName('alice@web-1'), { sub: 'alice', target: 'web-1' });
  assert.deepEqual(parseLoginName('alice@example.com@web-1'), { sub: 'alice@example.com', target: 'web-1' });
  for (const bad of ['alice', '@web-1', 'alice@', 'alice@web 1']) assert.equal(parseLoginName(bad), undefined, bad);
  const k = ssh2.utils.generateKeyPairSync('ed25519');
  const pinned = parsePinnedKeys([k.public], 't');
  const parsed = ssh2.utils.parseKey(k.public);
  assert.ok(!(parsed instanceof Error) && !Array.isArray(parsed));
  assert.ok(isPinned(pinned, (parsed as ssh2.ParsedKey).getPublicSSH()));
  assert.ok(!isPinned(pinned, Buffer.alloc(51)));
  assert.deepEqual(hostKeyAlgorithms(pinned), ['ssh-ed25519']);
  assert.throws(() => parsePinnedKeys(['ssh-ed25519 notbase64'], 't'), /OpenSSH public key line/);
  assert.throws(() => parsePinnedKeys(['ssh-rsa ' + k.public.split(' ')[1]], 't'), /OpenSSH public key line/, 'type must match the blob');
});
