/**
 * Fault injection for crash-consistency tests, off unless VIGIL_FAULT names a point:
 *   ingest.crash_after_insert  SIGKILL the process right after ClickHouse acknowledged a batch's
 *                              rows and before the log offset is committed — the window in which
 *                              a crash must neither lose nor duplicate rows.
 *   ingest.exit_after_insert   the same window, but process.exit(): in `vigil start` ingest runs in
 *                              a worker thread, so this ends only that thread (the supervisor
 *                              must restart it).
 * VIGIL_FAULT_ONCE_FILE, if set, makes the fault fire once: it fires only while the file does not
 * exist, and creates it (so a restarted worker with the same environment does not crash again).
 * Read once at start; the hot path only tests a constant.
 */
import { existsSync, writeFileSync } from 'node:fs';

export const FAULT = process.env.VIGIL_FAULT ?? '';
const ONCE = process.env.VIGIL_FAULT_ONCE_FILE;

/** The point between "ClickHouse acknowledged the rows" and "the log offset is committed". */
export function afterInsertFault(): void {
  if (FAULT !== 'ingest.crash_after_insert' && FAULT !== 'ingest.exit_after_insert') return;
  if (ONCE) {
    if (existsSync(ONCE)) return;
    writeFileSync(ONCE, FAULT);
  }
  if (FAULT === 'ingest.crash_after_insert') process.kill(process.pid, 'SIGKILL');
  else process.exit(99);
}
