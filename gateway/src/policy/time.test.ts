import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileWindow, localClock, timezoneProblem } from './time.ts';
import type { TimeWindow } from './schema.ts';
import { evaluate, loadPolicy } from './compile.ts';
import { alice, ctx, stmt } from './testkit.ts';

function win(w: Partial<TimeWindow>): (iso: string) => boolean {
  const full: TimeWindow = { from: '00:00', to: '24:00', timezone: 'UTC', outside: false, ...w };
  const f = compileWindow(full, localClock(full.timezone));
  return (iso) => f(new Date(iso));
}

test('local clock reads weekday and minute in the zone', () => {
  const paris = localClock('Europe/Paris');
  assert.deepEqual(paris(new Date('2024-06-12T22:30:00Z')), { weekday: 3, minute: 30 }); // Thu 00:30 CEST
  const ny = localClock('America/New_York');
  assert.deepEqual(ny(new Date('2024-06-12T02:05:00Z')), { weekday: 1, minute: 22 * 60 + 5 }); // Tue 22:05 EDT
  assert.deepEqual(ny(new Date('2024-06-12T02:05:59Z')), { weekday: 1, minute: 22 * 60 + 5 }); // memoised minute
  assert.deepEqual(ny(new Date('2024-06-12T02:06:00Z')), { weekday: 1, minute: 22 * 60 + 6 });
  assert.deepEqual(ny(new Date('2024-06-12T04:00:00Z')), { weekday: 2, minute: 0 }); // midnight is 0, never 24
});

test('business hours follow the wall clock across the spring DST change (Europe/Paris, 2024-03-31)', () => {
  const open = win({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '18:00', timezone: 'Europe/Paris' });
  // Friday before, CET = UTC+1
  assert.equal(open('2024-03-29T07:30:00Z'), false); // 08:30
  assert.equal(open('2024-03-29T08:00:00Z'), true); // 09:00, inclusive
  assert.equal(open('2024-03-29T16:59:00Z'), true); // 17:59
  assert.equal(open('2024-03-29T17:00:00Z'), false); // 18:00, exclusive
  // Monday after, CEST = UTC+2: the same UTC instants land an hour later on the wall clock
  assert.equal(open('2024-04-01T07:30:00Z'), true); // 09:30
  assert.equal(open('2024-04-01T06:59:00Z'), false); // 08:59
  assert.equal(open('2024-04-01T16:00:00Z'), false); // 18:00
  // The weekend in between
  assert.equal(open('2024-03-30T10:00:00Z'), false);
  assert.equal(open('2024-03-31T10:00:00Z'), false);
});

test('a window inside the skipped hour starts when the clock jumps (spring forward)', () => {
  const w = win({ from: '02:30', to: '03:30', timezone: 'Europe/Paris' });
  assert.equal(w('2024-03-31T00:59:00Z'), false); // 01:59 CET
  assert.equal(w('2024-03-31T01:00:00Z'), true); // 03:00 CEST: 02:30 never happened; the window opens at the jump
  assert.equal(w('2024-03-31T01:29:00Z'), true); // 03:29 CEST
  assert.equal(w('2024-03-31T01:30:00Z'), false); // 03:30 CEST
});

test('the repeated hour is inside the window both times (fall back, America/New_York, 2024-11-03)', () => {
  const w = win({ days: ['sun'], from: '01:00', to: '02:00', timezone: 'America/New_York' });
  assert.equal(w('2024-11-03T04:59:00Z'), false); // 00:59 EDT
  assert.equal(w('2024-11-03T05:30:00Z'), true); // 01:30 EDT
  assert.equal(w('2024-11-03T06:30:00Z'), true); // 01:30 EST, again
  assert.equal(w('2024-11-03T07:00:00Z'), false); // 02:00 EST
});

test('windows that wrap midnight belong to the day they start on', () => {
  const w = win({ days: ['fri'], from: '22:00', to: '06:00' });
  assert.equal(w('2024-06-14T21:59:00Z'), false); // Fri 21:59
  assert.equal(w('2024-06-14T22:00:00Z'), true); // Fri 22:00
  assert.equal(w('2024-06-14T23:59:00Z'), true);
  assert.equal(w('2024-06-15T00:00:00Z'), true); // Sat 00:00: Friday's window
  assert.equal(w('2024-06-15T05:59:00Z'), true);
  assert.equal(w('2024-06-15T06:00:00Z'), false);
  assert.equal(w('2024-06-15T22:30:00Z'), false); // Sat evening: Saturday is not listed
  assert.equal(w('2024-06-14T03:00:00Z'), false); // Fri morning belongs to Thursday's window
});

test('midnight wrap in a zone east of UTC (Asia/Tokyo)', () => {
  const w = win({ days: ['mon'], from: '22:00', to: '02:00', timezone: 'Asia/Tokyo' });
  assert.equal(w('2024-06-10T13:30:00Z'), true); // Mon 22:30 JST
  assert.equal(w('2024-06-10T16:30:00Z'), true); // Tue 01:30 JST
  assert.equal(w('2024-06-10T17:00:00Z'), false); // Tue 02:00 JST
  assert.equal(w('2024-06-09T13:30:00Z'), false); // Sun 22:30 JST
});

test('outside: true inverts the window; 24:00 ends the day', () => {
  const after = win({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00', timezone: 'UTC', outside: true });
  assert.equal(after('2024-06-12T12:00:00Z'), false);
  assert.equal(after('2024-06-12T17:00:00Z'), true);
  assert.equal(after('2024-06-15T12:00:00Z'), true); // Saturday
  const evening = win({ from: '18:00' });
  assert.equal(evening('2024-06-12T23:59:00Z'), true);
  assert.equal(evening('2024-06-13T00:00:00Z'), false);
});

test('time zone names are checked', () => {
  assert.equal(timezoneProblem('Europe/Paris'), undefined);
  assert.equal(timezoneProblem('UTC'), undefined);
  assert.match(timezoneProblem('Europe/Pariss') ?? '', /unknown time zone/);
});

test('a time condition in a rule: approval for DML without WHERE on prod outside business hours', () => {
  const p = loadPolicy(`version: 1
rules:
  - id: off-hours-dml
    match:
      targets: ["prod-*"]
      features: { any: [dml_without_where] }
      time: { days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00", timezone: Europe/Paris, outside: true }
    require_approval: { approver_groups: [dba] }
`);
  const dml = stmt(['write', 'dml_without_where']);
  const at = (iso: string, target = 'prod-eu') => evaluate(p, ctx(alice, dml, target, new Date(iso))).action;
  assert.equal(at('2024-06-12T10:00:00Z'), 'allow'); // Wed 12:00 CEST
  assert.equal(at('2024-06-12T17:00:00Z'), 'require_approval'); // Wed 19:00 CEST
  assert.equal(at('2024-06-12T06:59:00Z'), 'require_approval'); // Wed 08:59 CEST
  assert.equal(at('2024-06-15T10:00:00Z'), 'require_approval'); // Saturday
  assert.equal(at('2024-06-12T17:00:00Z', 'staging'), 'allow');
  // Alternating instants must not be confused by the per-minute memo
  assert.equal(at('2024-06-12T10:00:00Z'), 'allow');
  assert.equal(at('2024-06-12T17:00:00Z'), 'require_approval');
});
