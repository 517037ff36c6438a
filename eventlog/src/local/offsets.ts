/**
 * Committed consumer offsets: one small file per group per topic,
 * `<dir>/<topic>/consumers/<base64url(group)>.offset`, replaced atomically (write temp, fsync,
 * rename, fsync dir) so a crash leaves either the old or the new offset, never a torn one.
 * The stored offset is the NEXT offset to read (Kafka's convention).
 */
import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

const SUFFIX = '.offset';

function groupsDir(topicDir: string): string {
  return join(topicDir, 'consumers');
}

function fileFor(topicDir: string, groupId: string): string {
  return join(groupsDir(topicDir), Buffer.from(groupId, 'utf8').toString('base64url') + SUFFIX);
}

export async function readCommitted(topicDir: string, groupId: string): Promise<number | undefined> {
  try {
    return parse(await readFile(fileFor(topicDir, groupId), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parse(text: string): number {
  const v = (JSON.parse(text) as { offset?: unknown }).offset;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error('malformed offset file');
  return Number(v);
}

/** Every group's committed offset on a topic (read from disk: a consumer may live in another process). */
export async function readAllCommitted(topicDir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let names: string[];
  try {
    names = await readdir(groupsDir(topicDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  for (const name of names) {
    if (!name.endsWith(SUFFIX)) continue;
    const group = Buffer.from(name.slice(0, -SUFFIX.length), 'base64url').toString('utf8');
    try {
      out.set(group, parse(await readFile(join(groupsDir(topicDir), name), 'utf8')));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

export async function writeCommitted(topicDir: string, groupId: string, offset: number): Promise<void> {
  const dir = groupsDir(topicDir);
  await mkdir(dir, { recursive: true });
  const target = fileFor(topicDir, groupId);
  const tmp = `${target}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify({ group: groupId, offset: String(offset), committed_at: new Date().toISOString() }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, target);
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
