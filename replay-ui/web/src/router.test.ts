import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute } from './router.ts';

test('routes under /ui/', () => {
  assert.deepEqual(parseRoute('/ui/', '?q=drop').name, 'sessions');
  assert.equal((parseRoute('/ui/', '?q=drop') as { search: URLSearchParams }).search.get('q'), 'drop');
  const session = parseRoute('/ui/sessions/a%2Fb', '?t=12.5') as { name: string; id: string; search: URLSearchParams };
  assert.deepEqual([session.name, session.id, session.search.get('t')], ['session', 'a/b', '12.5']);
  assert.equal(parseRoute('/ui/alerts', '?min_severity=high').name, 'alerts');
  assert.deepEqual(parseRoute('/ui/alerts/abc123', ''), { name: 'alert', id: 'abc123' });
  assert.deepEqual(parseRoute('/ui/activity', ''), { name: 'activity' });
  assert.deepEqual(parseRoute('/ui/callback', '?code=x'), { name: 'callback', search: '?code=x' });
  assert.deepEqual(parseRoute('/ui/sessions/a/b', ''), { name: 'not-found' });
});
