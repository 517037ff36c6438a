/**
 * Fault injection for crash-consistency tests, off unless VIGIL_FAULT names a point:
 *   ingest.crash_after_insert  SIGKILL this process right after ClickHouse acknowledged a batch's
 *                              rows and before the log offset is committed — the window in which
 *                              a crash must neither lose nor duplicate rows.
 * Read once at start; the hot path only tests a constant.
 */
export const FAULT = process.env.VIGIL_FAULT ?? '';

export function crashPoint(name: 'ingest.crash_after_insert'): void {
  if (FAULT === name) process.kill(process.pid, 'SIGKILL');
}
