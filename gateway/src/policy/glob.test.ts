import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileGlobList, globProblem } from './glob.ts';

test('glob syntax: * ? classes, negation, escapes', () => {
  const m = compileGlobList(['svc-*', 'db?', 'node[0-9]', 'x[!ab]', 'lit\\*', 'a.b']);
  for (const yes of ['svc-', 'svc-x.y', 'db1', 'node7', 'xc', 'lit*', 'a.b']) assert.equal(m(yes), true, yes);
  for (const no of ['svc', 'db', 'db12', 'nodeA', 'xa', 'litx', 'aXb', 'Svc-1']) assert.equal(m(no), false, no);
});

test('case-insensitive lists (relations, functions, columns)', () => {
  const m = compileGlobList(['Users', 'ord*'], true);
  assert.equal(m('USERS'), true);
  assert.equal(m('Orders'), true);
  assert.equal(m('people'), false);
});

test('bad globs are reported, good ones are not', () => {
  assert.equal(globProblem('prod-*'), undefined);
  assert.equal(globProblem('[]]'), undefined); // ']' first in a class is a member
  assert.match(globProblem('prod-[eu') ?? '', /unclosed '\['/);
  assert.match(globProblem('a{b,c}') ?? '', /braces/);
  assert.match(globProblem('a]') ?? '', /unmatched '\]'/);
  assert.match(globProblem('a\\') ?? '', /trailing backslash/);
  assert.match(globProblem('[z-a]') ?? '', /bad glob/);
});
