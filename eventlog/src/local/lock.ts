/**
 * Single-writer lock: `<dir>/LOCK`, created with O_EXCL, holding the owner's pid and host.
 *
 * Node has no flock(), so a crashed owner leaves the file behind; a lock whose pid is on this host
 * and no longer alive is stale and taken over. Caveats (documented in docs/event-log.md): pid reuse
 * can make a stale lock look alive (remove LOCK by hand), and a shared directory across hosts is
 * only protected while the other host's owner is alive — the host name is compared, never the pid.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { logError } from './errors.ts';

/** Dirs locked by this process: a second LocalEventLog on the same dir in-process is refused too. */
const heldInProcess = new Set<string>();

export interface DirLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireLock(dir: string): Promise<DirLock> {
  const key = resolve(dir);
  if (heldInProcess.has(key)) throw logError('LOG_ERR_LOCKED', `log ${dir} is already open in this process`);
  const path = join(dir, 'LOCK');
  const me = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(me);
        await fh.sync();
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw logError('LOG_ERR_LOCKED', `log ${dir} is locked by another writer`);
        }
        throw logError('LOG_ERR_IO', `cannot create lock file in ${dir}`, err);
      }
      let owner: { pid?: unknown; host?: unknown } = {};
      try {
        owner = JSON.parse(await readFile(path, 'utf8')) as typeof owner;
      } catch {
        // Unreadable or half-written by a concurrent opener: treat as held, never steal it.
      }
      const stale = owner.host === hostname() && typeof owner.pid === 'number' && owner.pid !== process.pid && !alive(owner.pid);
      if (!stale) {
        throw logError('LOG_ERR_LOCKED', `log ${dir} is locked by pid ${String(owner.pid ?? '?')} on ${String(owner.host ?? '?')}`);
      }
      await unlink(path).catch(() => undefined);
      // Loop once more: O_EXCL decides between concurrent stealers.
    }
  }
  heldInProcess.add(key);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      heldInProcess.delete(key);
      await unlink(path).catch(() => undefined);
    },
  };
}
