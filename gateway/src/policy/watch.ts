/**
 * Hot reload of a policy file. The running policy is replaced only by one that parsed, validated
 * and compiled; anything else keeps it and reports every problem through onError (the caller
 * turns that into an error event).
 *
 * Change detection is belt and braces: fs.watch on the DIRECTORY (editors and config managers
 * replace files by rename, which would orphan a watch on the file's inode), debounced because one
 * save fires several events; plus a periodic stat, because fs.watch misses changes on network and
 * container filesystems. A reload compares the text with the last one tried, so a touch or a
 * duplicate event costs one read and nothing else.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { loadPolicy, type CompiledPolicy } from './compile.ts';
import { PolicyError, isPolicyError } from './errors.ts';

export interface WatchPolicyOptions {
  /** Quiet time after the last fs event before reading. */
  debounce_ms?: number;
  /** Stat fallback period; 0 disables it. */
  poll_interval_ms?: number;
  /** false: rely on the stat poll only (filesystems where fs.watch is unreliable, or no inotify watches left). */
  use_fs_watch?: boolean;
}

export interface PolicyHandle {
  /** The policy in force: the last valid one. */
  current(): CompiledPolicy;
  close(): void;
}

function readError(path: string, err: unknown): PolicyError {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
  return new PolicyError('GW_ERR_POLICY_READ', path, [{ path: '', message: `cannot read the policy file (${code})` }], { cause: err });
}

function signature(s: { ino: number; size: number; mtimeMs: number }): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/**
 * Load `path` now (throws PolicyError if it is unreadable or invalid: a gateway must not start
 * with a policy it cannot enforce), then follow changes. onChange is called with each new policy
 * after it is in force; onError with a PolicyError listing every problem of a rejected file
 * (once per distinct failure). Neither callback may throw: they run from timers.
 */
export function watchPolicy(
  path: string,
  onChange: (policy: CompiledPolicy) => void,
  onError: (err: PolicyError) => void,
  options: WatchPolicyOptions = {},
): PolicyHandle {
  const file = resolve(path);
  const debounceMs = options.debounce_ms ?? 100;
  const pollMs = options.poll_interval_ms ?? 2000;

  let lastText: string;
  let lastSig: string;
  try {
    lastText = readFileSync(file, 'utf8');
    lastSig = signature(statSync(file));
  } catch (err) {
    throw readError(file, err);
  }
  let current = loadPolicy(lastText, file);

  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  /** Last failure reported, so a missing file polled every 2 s is reported once, not forever. */
  let lastFailure: string | undefined;

  const report = (err: PolicyError) => {
    const key = err.message;
    if (key === lastFailure) return;
    lastFailure = key;
    onError(err);
  };

  const reload = async (): Promise<void> => {
    if (running) {
      again = true; // one more pass after this one, so the last write always wins
      return;
    }
    running = true;
    try {
      do {
        again = false;
        let text: string;
        try {
          const s = await stat(file);
          text = await readFile(file, 'utf8');
          lastSig = signature(s);
          if (lastFailure?.includes('GW_ERR_POLICY_READ')) lastFailure = undefined; // readable again
        } catch (err) {
          lastSig = 'unreadable';
          if (!closed) report(readError(file, err));
          continue;
        }
        if (closed || text === lastText) continue;
        lastText = text;
        try {
          const next = loadPolicy(text, file);
          current = next;
          lastFailure = undefined;
          onChange(next);
        } catch (err) {
          if (!isPolicyError(err)) throw err; // a bug in the compiler, not a bad file: let it surface
          report(err);
        }
      } while (again && !closed);
    } finally {
      running = false;
    }
  };

  const schedule = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
    timer.unref();
  };

  let watcher: FSWatcher | undefined;
  if (options.use_fs_watch !== false) try {
    const name = basename(file);
    watcher = watch(dirname(file), { persistent: false }, (_event, filename) => {
      // filename can be null on some platforms; then any event in the directory may be ours.
      if (filename === null || filename.toString() === name) schedule();
    });
    watcher.on('error', () => {
      watcher?.close(); // e.g. the directory went away; the stat poll carries on alone
      watcher = undefined;
    });
  } catch {
    watcher = undefined; // fs.watch unsupported here: polling only
  }

  const poll =
    pollMs > 0
      ? setInterval(() => {
          stat(file).then(
            (s) => {
              if (signature(s) !== lastSig) schedule();
            },
            () => {
              if (lastSig !== 'unreadable') schedule();
            },
          );
        }, pollMs)
      : undefined;
  poll?.unref();

  return {
    current: () => current,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      watcher?.close();
    },
  };
}
