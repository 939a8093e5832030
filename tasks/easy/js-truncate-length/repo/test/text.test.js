'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { truncate, formatTitles } = require('../src/text');

const TITLE = 'Stainless steel water bottle, 1 litre';

test('cuts long strings to exactly the limit', () => {
  assert.equal(truncate(TITLE, 20), 'Stainless steel w...');
  for (let max = 4; max < TITLE.length; max++) {
    const out = truncate(TITLE, max);
    assert.equal(out.length, max, `max=${max}`);
    assert.ok(out.endsWith('...'));
    assert.ok(TITLE.startsWith(out.slice(0, -3)));
  }
});

test('leaves strings that fit alone', () => {
  assert.equal(truncate('short', 20), 'short');
  assert.equal(truncate('exactly twenty chars', 20), 'exactly twenty chars');
  assert.equal(truncate('', 5), '');
});

test('one character too long is still cut', () => {
  assert.equal(truncate('abcdefghijk', 10), 'abcdefg...');
});

test('custom ellipsis', () => {
  assert.equal(truncate('abcdefghij', 5, '…'), 'abcd…');
  assert.equal(truncate('abcdefghij', 6, ' [more]'), ' [more'.slice(0, 6));
});

test('tiny limits', () => {
  assert.equal(truncate('abcdef', 3), '...');
  assert.equal(truncate('abcdef', 2), '..');
  assert.equal(truncate('abcdef', 0), '');
  assert.throws(() => truncate('abc', -1), RangeError);
});

test('formatTitles keeps the other fields', () => {
  const out = formatTitles([{ id: 7, title: TITLE }], 12);
  assert.deepEqual(out, [{ id: 7, title: 'Stainless...' }]);
});
