import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoute } from './router.ts';

test('routes under /ui/', () => {
  assert.deepEqual(parseRoute('/ui/', '?q=drop').name, 'sessions');
  assert.equal((parseRoute('/ui/', '?q=drop') as { search: URLSearchParams }).search.get('q'), 'drop');
  assert.deepEqual(parseRoute('/ui/sessions/a%2Fb', ''), { name: 'session', id: 'a/b' });
  assert.deepEqual(parseRoute('/ui/activity', ''), { name: 'activity' });
  assert.deepEqual(parseRoute('/ui/callback', '?code=x'), { name: 'callback', search: '?code=x' });
  assert.deepEqual(parseRoute('/ui/sessions/a/b', ''), { name: 'not-found' });
});
