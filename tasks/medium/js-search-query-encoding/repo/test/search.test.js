'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { searchUrl } = require('../src/api');
const { handleSearch } = require('../src/router');
const { buildQuery, parseQuery } = require('../src/util/qs');

const BASE = 'https://shop.example/api/';

const TRICKY = [
  'fish & chips',
  'C#',
  'C++',
  '100%',
  '50% off',
  'a=b',
  'what?',
  'naïve café ☕',
  'x/y\\z',
  "rock 'n' roll",
  '%41',
  'tab\there',
  '',
];

test('every search text survives the trip to the server', () => {
  for (const q of TRICKY) {
    const req = handleSearch(searchUrl(BASE, { q }));
    assert.equal(req.q, q, `q=${JSON.stringify(q)}`);
  }
});

test('tags with special characters survive too', () => {
  const tags = ['kids & baby', 'sale', 'size=XL', '+plus'];
  const req = handleSearch(searchUrl(BASE, { q: 'shirt', tags, page: 3 }));
  assert.deepEqual(req, { q: 'shirt', tags, page: 3 });
});

test('buildQuery / parseQuery round trip', () => {
  const params = { q: 'fish & chips', 'odd key&=': 'v', tags: ['a b', 'c&d'] };
  assert.deepEqual(parseQuery(buildQuery(params)), params);
});

test('space encoding', () => {
  assert.ok(['q=a+b', 'q=a%20b'].includes(buildQuery({ q: 'a b' })), buildQuery({ q: 'a b' }));
});

test('forms send + for spaces', () => {
  assert.deepEqual(parseQuery('q=red+shoes&tags=on+sale'), { q: 'red shoes', tags: 'on sale' });
  assert.deepEqual(parseQuery('q=C%2B%2B'), { q: 'C++' });
});

test('hand-typed URLs with a stray % do not blow up', () => {
  assert.deepEqual(parseQuery('q=100%'), { q: '100%' });
  assert.deepEqual(parseQuery('q=50%%20off'), { q: '50% off' });
  assert.deepEqual(parseQuery('q=%zz'), { q: '%zz' });
  assert.equal(handleSearch('/search?q=100%').q, '100%');
});

test('parse details', () => {
  assert.deepEqual(parseQuery('?a=1&a=2&a=3'), { a: ['1', '2', '3'] });
  assert.deepEqual(parseQuery('flag&x='), { flag: '', x: '' });
  assert.deepEqual(parseQuery('a=b=c'), { a: 'b=c' });
  assert.deepEqual(parseQuery(''), {});
  assert.deepEqual(parseQuery('&&a=1&'), { a: '1' });
});

test('page handling', () => {
  assert.equal(searchUrl(BASE, { q: 'x', page: 1 }).includes('page'), false);
  assert.equal(handleSearch('/search?q=x&page=0').page, 1);
  assert.equal(handleSearch('/search?q=x&page=7#top').page, 7);
  assert.deepEqual(handleSearch('/search'), { q: '', tags: [], page: 1 });
});
