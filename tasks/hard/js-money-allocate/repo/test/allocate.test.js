'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { allocate, splitEvenly } = require('../src/allocate');
const { splitBill } = require('../src/bill');

test('three ways', () => {
  assert.deepEqual(allocate(100, [1, 1, 1]), [34, 33, 33]);
  assert.deepEqual(splitEvenly(100, 3), [34, 33, 33]);
  assert.deepEqual(splitEvenly(200, 3), [67, 67, 66]);
});

test('more parts than cents', () => {
  assert.deepEqual(splitEvenly(5, 6), [1, 1, 1, 1, 1, 0]);
  assert.deepEqual(splitEvenly(1, 3), [1, 0, 0]);
  assert.deepEqual(splitEvenly(0, 2), [0, 0]);
});

test('largest remainder wins, ties to the earlier part', () => {
  assert.deepEqual(allocate(10, [1, 2]), [3, 7]);
  assert.deepEqual(allocate(11, [3, 3, 4]), [3, 3, 5]);
  assert.deepEqual(allocate(2, [1, 1, 1, 1]), [1, 1, 0, 0]);
  assert.deepEqual(allocate(1001, [2, 1, 1]), [501, 250, 250]);
  assert.deepEqual(allocate(1003, [1, 2, 1]), [251, 501, 251]);
});

test('zero ratios get nothing', () => {
  assert.deepEqual(allocate(7, [0, 1, 1]), [0, 4, 3]);
  assert.deepEqual(allocate(1, [0, 0, 1]), [0, 0, 1]);
  assert.deepEqual(allocate(5, [0, 1, 0, 1, 0]), [0, 3, 0, 2, 0]);
});

test('negative totals mirror positive ones', () => {
  assert.deepEqual(allocate(-100, [1, 1, 1]), [-34, -33, -33]);
  assert.deepEqual(allocate(-11, [3, 3, 4]), [-3, -3, -5]);
  assert.deepEqual(allocate(-1, [1, 1]), [-1, 0]);
});

test('fractional ratios', () => {
  assert.deepEqual(allocate(1000, [0.2, 0.3, 0.5]), [200, 300, 500]);
  assert.deepEqual(allocate(100, [0.7, 0.2, 0.1]), [70, 20, 10]);
  assert.deepEqual(allocate(1, [0.5, 0.5]), [1, 0]);
});

test('large amounts', () => {
  assert.deepEqual(allocate(1e12 + 1, [1, 1]), [500000000001, 500000000000]);
  assert.deepEqual(allocate(999999999999, [1, 1, 1]), [333333333333, 333333333333, 333333333333]);
});

test('invalid input', () => {
  assert.throws(() => allocate(1.5, [1]), RangeError);
  assert.throws(() => allocate(NaN, [1]), RangeError);
  assert.throws(() => allocate(10, []), RangeError);
  assert.throws(() => allocate(10, [0, 0]), RangeError);
  assert.throws(() => allocate(10, [-1, 2]), RangeError);
  assert.throws(() => allocate(10, [NaN, 1]), RangeError);
  assert.throws(() => allocate(10, [Infinity, 1]), RangeError);
  assert.throws(() => splitEvenly(10, 0), RangeError);
});

test('random splits keep every cent and stay within a cent of the exact share', () => {
  let seed = 99;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    const total = rnd(200001) - 100000;
    const ratios = Array.from({ length: 1 + rnd(7) }, () => rnd(5));
    if (ratios.every((r) => r === 0)) ratios[0] = 1;
    const parts = allocate(total, ratios);
    const sum = ratios.reduce((a, b) => a + b, 0);
    assert.equal(parts.length, ratios.length);
    assert.equal(parts.reduce((a, b) => a + b, 0), total, `${total} ${ratios}`);
    parts.forEach((p, j) => {
      assert.ok(Number.isInteger(p));
      const exact = (total * ratios[j]) / sum;
      assert.ok(Math.abs(p - exact) < 1, `${total} ${ratios} part ${j}`);
      assert.ok(Math.abs(p) >= Math.floor(Math.abs(exact) + 1e-9), `rounded away: ${total} ${ratios}`);
      if (ratios[j] === 0) assert.equal(p, 0);
    });
  }
});

test('splitBill', () => {
  const people = [
    { name: 'alice', weight: 2 },
    { name: 'bob', weight: 1 },
    { name: 'carol', weight: 1 },
  ];
  assert.deepEqual(splitBill(1001, people), { alice: 501, bob: 250, carol: 250 });
  assert.deepEqual(splitBill(10000, people.slice(1)), { bob: 5000, carol: 5000 });
  assert.deepEqual(splitBill(1, people.slice(1)), { bob: 1, carol: 0 });
});
