/**
 * End to end, as a user runs it: `vigil start` (embedded: local log, chDB, dev issuer) with
 * `gateway.ssh` and an SSH target (a real sshd started here), an ssh2 client through the gateway,
 * ingest lands terminal rows and commands, the API exports the asciicast. The host key is created
 * under the data dir and kept across a restart; the target's key appears nowhere in the output.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ssh2, { type ClientChannel } from 'ssh2';
import { startVigil, freePort, type VigilProcess } from '../support/vigil-process.ts';
import { startSshd, TEST_USER, type Sshd } from '@vigil/gateway/protocols/ssh/testkit';

let sshd: Sshd;
let vigil: VigilProcess;
let sshPort: number;

async function startWith(dataDir?: string): Promise<VigilProcess> {
  return startVigil({
    ...(dataDir ? { dataDir } : {}),
    config: {
      gateway: { ssh: { listen_host: '127.0.0.1', listen_port: sshPort } },
      targets: [
        { id: 'local-pg', protocol: 'postgres', host: '127.0.0.1', port: 5432, database: 'postgres', user: 'postgres' },
        { id: 'web-1', protocol: 'ssh', host: '127.0.0.1', port: sshd.port, user: TEST_USER, host_keys: [sshd.hostKey], private_key: { file: sshd.clientKeyFile } },
      ],
    },
  });
}

before(async () => {
  sshd = await startSshd();
  sshPort = await freePort();
  vigil = await startWith();
});
after(async () => {
  await vigil?.stop();
  await sshd?.stop();
});

async function api(path: string, token: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${vigil.apiPort}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text() };
}

test('vigil start: ssh session recorded, ingested, exported; host key persisted; no key material in output', async () => {
  const hostKeyFile = join(vigil.dataDir, 'ssh', 'host_key');
  assert.equal(statSync(hostKeyFile).mode & 0o777, 0o600);
  const hostKey = readFileSync(hostKeyFile, 'utf8');
  const token = await vigil.token('erin', { groups: ['dev'] });
  const c = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve());
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port: sshPort, username: 'erin@web-1', password: token, readyTimeout: 30_000 });
  });
  const ch = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: 'xterm', cols: 80, rows: 24 }, (e, s) => (e ? reject(e) : resolve(s))));
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  const wait = async (re: RegExp) => {
    for (let i = 0; i < 400 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, re);
  };
  await wait(/\$ /);
  ch.write('echo e2e-$((20+22))\r');
  await wait(/e2e-42/);
  const closed = new Promise<void>((r) => ch.once('close', () => r()));
  ch.write('exit\r');
  await closed;
  c.end();

  const analyst = await vigil.token('carol', { roles: ['analyst'] });
  let sessionId = '';
  for (let i = 0; i < 200 && !sessionId; i++) {
    const r = await api('/api/sessions?sub=erin', analyst);
    const items = (JSON.parse(r.body) as { items: { session_id: string; protocol: string; end_reason: string }[] }).items;
    if (items[0]?.end_reason) sessionId = items[0].session_id;
    else await new Promise((r2) => setTimeout(r2, 100));
  }
  assert.ok(sessionId, 'the ssh session landed in the store');
  let cast = { status: 0, body: '' };
  for (let i = 0; i < 100; i++) {
    cast = await api(`/api/sessions/${sessionId}/asciicast?version=3`, analyst);
    if (cast.status === 200 && cast.body.includes('e2e-42')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(cast.status, 200, cast.body);
  const lines = cast.body.trim().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.deepEqual((lines[0] as { term: unknown }).term, { cols: 80, rows: 24 });
  assert.ok(lines.some((l) => Array.isArray(l) && l[1] === 'm' && l[2] === 'echo e2e-$((20+22))'), 'command marker');

  // Restart on the same data dir: the same host key.
  await vigil.stop();
  vigil = await startWith(vigil.dataDir);
  assert.equal(readFileSync(hostKeyFile, 'utf8'), hostKey);
  const keyBody = sshd.clientKeyText.split('\n').filter((l) => l && !l.startsWith('-----'));
  for (const line of keyBody) assert.ok(!vigil.output().includes(line), 'target key material in vigil output');
  // Ready means the PostgreSQL port accepts; the SSH listener may log a moment later.
  for (let i = 0; i < 100 && !/ssh gateway listening/i.test(vigil.output()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(vigil.output(), /ssh gateway listening/i);
});
