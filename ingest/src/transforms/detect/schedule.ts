/**
 * Working-hours schedules and change windows, evaluated at event time (µs). Local wall-clock time
 * of an IANA zone is read with Intl.DateTimeFormat (the tz database Node ships), so a schedule
 * follows daylight saving time by itself. `from` is inclusive, `to` exclusive; no from/to = all day.
 */
import type { ChangeWindow, Schedule } from './config.ts';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAY: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

interface Local {
  date: string;
  weekday: number;
  minute: number;
}

/** A memoised clock per zone: offsets change only on whole minutes, so one reading serves a UTC minute. */
function clockFor(timezone: string): (us: number) => Local {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });
  let memoMinute = -1;
  let memo: Local = { date: '', weekday: 0, minute: 0 };
  return (us) => {
    const minute = Math.floor(us / 60_000_000);
    if (minute === memoMinute) return memo;
    const p: Record<string, string> = {};
    for (const part of fmt.formatToParts(new Date(minute * 60_000))) p[part.type] = part.value;
    memoMinute = minute;
    memo = { date: `${p.year}-${p.month}-${p.day}`, weekday: WEEKDAY[p.weekday!] ?? 0, minute: Number(p.hour) * 60 + Number(p.minute) };
    return memo;
  };
}

/** Throws a readable error for a zone Node does not know. */
export function checkTimezone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new Error(`unknown time zone "${tz}" (expected an IANA name such as Europe/Paris or UTC)`);
  }
}

const hhmm = (s: string | undefined, dflt: number): number => (s === undefined ? dflt : s === '24:00' ? 1440 : Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5)));

/** Compile a schedule to "is this instant inside working hours?". */
export function compileSchedule(s: Schedule): (us: number) => boolean {
  checkTimezone(s.timezone);
  const clock = clockFor(s.timezone);
  const from = hhmm(s.from, 0);
  const to = hhmm(s.to, 1440);
  const days = new Set(s.days.map((d) => DAYS.indexOf(d)));
  const holidays = new Set(s.holidays);
  return (us) => {
    const t = clock(us);
    if (holidays.has(t.date)) return false;
    if (from <= to) return days.has(t.weekday) && t.minute >= from && t.minute < to;
    // Wraps midnight: the evening belongs to today's shift, the early morning to yesterday's.
    return (days.has(t.weekday) && t.minute >= from) || (days.has((t.weekday + 6) % 7) && t.minute < to);
  };
}

export interface CompiledChangeWindow {
  id: string;
  covers(us: number, sub: string, target: string): boolean;
}

export function compileChangeWindows(list: readonly ChangeWindow[]): CompiledChangeWindow[] {
  return list.map((w) => {
    const start = Date.parse(w.start) * 1000;
    const end = Date.parse(w.end) * 1000;
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) throw new Error(`change window ${w.id}: start/end must be ISO 8601 instants with start < end`);
    const subs = new Set(w.subs);
    const targets = new Set(w.targets);
    return {
      id: w.id,
      covers: (us, sub, target) => us >= start && us < end && (subs.size === 0 || subs.has(sub)) && (targets.size === 0 || targets.has(target)),
    };
  });
}

/** The change window covering this instant, identity and target, if any. */
export function inChangeWindow(windows: readonly CompiledChangeWindow[], us: number, sub: string, target: string): string | undefined {
  for (const w of windows) if (w.covers(us, sub, target)) return w.id;
  return undefined;
}
