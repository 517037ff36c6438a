/**
 * Time windows compiled to a predicate of `Date`. Windows are in local wall-clock time of an IANA
 * time zone, read with Intl.DateTimeFormat (the tz database Node ships), so "09:00–18:00
 * Europe/Paris" follows daylight saving time by itself.
 *
 * Semantics (docs/policy.md):
 * - `from` is inclusive, `to` exclusive; `to: "24:00"` is the end of the day.
 * - `to` < `from` wraps midnight; `days` names the day the window STARTS on, so
 *   `days: [fri], from: 22:00, to: 06:00` covers Friday 22:00 to Saturday 06:00.
 * - Spring forward: wall-clock times in the skipped hour never occur, so a window starting at 02:30
 *   on that day begins at 03:00. Fall back: the repeated hour is inside a window covering it both times.
 */
import type { Day, TimeWindow } from './schema.ts';

/** Local wall-clock reading: weekday 0 = Monday … 6 = Sunday, minute of day 0 … 1439. */
export interface LocalTime {
  weekday: number;
  minute: number;
}

const WEEKDAY: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };
const DAY_INDEX: Record<Day, number> = { mon: 0, tue: 1, wed: 2, thu: 3, fri: 4, sat: 5, sun: 6 };

/** Returns an error message when `tz` is not a time zone this Node knows. */
export function timezoneProblem(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `unknown time zone "${tz}" (expected an IANA name such as Europe/Paris or UTC)`;
  }
}

/**
 * A clock for one time zone. formatToParts costs microseconds, so the reading is memoised for the
 * current UTC minute: UTC offsets change only on whole minutes (true of every zone since the
 * early 20th century), so every instant in one UTC minute has the same local weekday and minute.
 */
export function localClock(timezone: string): (now: Date) => LocalTime {
  const fmt = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  let cachedMinute = Number.NaN;
  let cached: LocalTime = { weekday: 0, minute: 0 };
  return (now) => {
    const utcMinute = Math.floor(now.getTime() / 60_000);
    if (utcMinute === cachedMinute) return cached;
    let weekday = 0;
    let hour = 0;
    let minute = 0;
    for (const p of fmt.formatToParts(now)) {
      if (p.type === 'weekday') weekday = WEEKDAY[p.value];
      else if (p.type === 'hour') hour = Number(p.value) % 24; // some ICU versions print 24 for midnight
      else if (p.type === 'minute') minute = Number(p.value);
    }
    cached = { weekday, minute: hour * 60 + minute };
    cachedMinute = utcMinute;
    return cached;
  };
}

function hhmm(s: string): number {
  return Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5));
}

/** Returns an error message for a window that cannot mean anything, else undefined. */
export function windowProblem(w: { from?: unknown; to?: unknown }): string | undefined {
  const from = typeof w.from === 'string' ? w.from : '00:00';
  const to = typeof w.to === 'string' ? w.to : '24:00';
  if (from === to) return `from and to are both ${from}: the window would be empty or the whole day; omit both for "all day"`;
  return undefined;
}

/**
 * Compile a validated window. `clock` is shared by every window of the same zone (compile.ts keeps
 * one per zone) so the memo serves them all.
 */
export function compileWindow(w: TimeWindow, clock: (now: Date) => LocalTime): (now: Date) => boolean {
  const from = hhmm(w.from);
  const to = w.to === '24:00' ? 1440 : hhmm(w.to);
  let dayMask = 0;
  for (const d of w.days ?? ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']) dayMask |= 1 << DAY_INDEX[d as Day];
  const onDay = (weekday: number) => (dayMask & (1 << weekday)) !== 0;
  const inside: (t: LocalTime) => boolean =
    from < to
      ? (t) => onDay(t.weekday) && t.minute >= from && t.minute < to
      : // Wraps midnight: the evening part belongs to today's window, the morning part to yesterday's.
        (t) => (onDay(t.weekday) && t.minute >= from) || (onDay((t.weekday + 6) % 7) && t.minute < to);
  return w.outside ? (now) => !inside(clock(now)) : (now) => inside(clock(now));
}
