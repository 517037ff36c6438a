import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser } from './sse.ts';

test('messages split anywhere across chunks come out whole; comments and CRLF handled', () => {
  const p = new SseParser();
  const text = ': keep-alive\r\n\r\nevent: info\ndata: {"a":1}\n\nevent: events\ndata: line1\ndata: line2\n\ndata: plain\n\n';
  const got = [];
  for (let i = 0; i < text.length; i += 3) got.push(...p.push(text.slice(i, i + 3)));
  assert.deepEqual(got, [
    { event: 'info', data: '{"a":1}' },
    { event: 'events', data: 'line1\nline2' },
    { event: 'message', data: 'plain' },
  ]);
  assert.deepEqual(p.push('event: x\ndata: incomplete\n'), []);
});
