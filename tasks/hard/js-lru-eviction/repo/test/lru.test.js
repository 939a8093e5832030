'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { LRUCache } = require('../src/lru');

function tracked(opts) {
  const events = [];
  const cache = new LRUCache({ ...opts, onEvict: (k, v, why) => events.push([k, v, why]) });
  return { cache, events };
}

test('evicts the least recently used entry', () => {
  const { cache, events } = tracked({ capacity: 2 });
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  assert.deepEqual(cache.keys(), ['b', 'c']);
  assert.deepEqual(events, [['a', 1, 'evict']]);
});

test('get makes an entry recently used', () => {
  const { cache } = tracked({ capacity: 2 });
  cache.set('a', 1);
  cache.set('b', 2);
  assert.equal(cache.get('a'), 1);
  cache.set('c', 3);
  assert.equal(cache.has('a'), true);
  assert.equal(cache.has('b'), false);
  assert.deepEqual(cache.keys(), ['a', 'c']);
});

test('has and peek do not change the order', () => {
  const { cache } = tracked({ capacity: 2 });
  cache.set('a', 1);
  cache.set('b', 2);
  assert.equal(cache.has('a'), true);
  assert.equal(cache.peek('a'), 1);
  cache.set('c', 3);
  assert.deepEqual(cache.keys(), ['b', 'c']);
});

test('updating a key refreshes it and reports the replaced value', () => {
  const { cache, events } = tracked({ capacity: 3 });
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  cache.set('a', 10);
  assert.deepEqual(cache.keys(), ['b', 'c', 'a']);
  assert.deepEqual(events, [['a', 1, 'replace']]);
  cache.set('d', 4);
  assert.deepEqual(cache.keys(), ['c', 'a', 'd']);
  assert.deepEqual(events, [['a', 1, 'replace'], ['b', 2, 'evict']]);
  assert.equal(cache.get('a'), 10);
  assert.equal(cache.size, 3);
});

test('a heavy entry evicts as many old ones as needed', () => {
  const { cache, events } = tracked({ capacity: 10, weigh: (v) => v.length });
  cache.set('a', 'xxx');
  cache.set('b', 'xxx');
  cache.set('c', 'xxx');
  cache.get('a');
  cache.set('d', 'xxxxxxx');
  assert.deepEqual(cache.keys(), ['a', 'd']);
  assert.deepEqual(events.map((e) => e[0]), ['b', 'c']);
  assert.equal(cache.weight, 10);
});

test('an entry bigger than the capacity is refused and changes nothing', () => {
  const { cache, events } = tracked({ capacity: 5, weigh: (v) => v.length });
  cache.set('a', 'xx');
  cache.set('b', 'xx');
  assert.equal(cache.set('big', 'xxxxxx'), false);
  assert.deepEqual(cache.keys(), ['a', 'b']);
  assert.deepEqual(events, []);
  assert.equal(cache.weight, 4);
});

test('replacing with a value that no longer fits removes the old entry', () => {
  const { cache, events } = tracked({ capacity: 5, weigh: (v) => v.length });
  cache.set('a', 'xx');
  cache.set('b', 'xx');
  assert.equal(cache.set('a', 'xxxxxx'), false);
  assert.equal(cache.has('a'), false);
  assert.deepEqual(cache.keys(), ['b']);
  assert.deepEqual(events, [['a', 'xx', 'replace']]);
  assert.equal(cache.weight, 2);
});

test('growing an entry in place evicts others, never itself', () => {
  const { cache, events } = tracked({ capacity: 6, weigh: (v) => v.length });
  cache.set('a', 'xx');
  cache.set('b', 'xx');
  cache.set('c', 'xx');
  cache.set('b', 'xxxx');
  assert.deepEqual(cache.keys(), ['c', 'b']);
  assert.deepEqual(events, [['b', 'xx', 'replace'], ['a', 'xx', 'evict']]);
  assert.equal(cache.weight, 6);
});

test('zero capacity stores nothing', () => {
  const { cache } = tracked({ capacity: 0 });
  assert.equal(cache.set('a', 1), false);
  assert.equal(cache.size, 0);
  assert.equal(cache.get('a'), undefined);
});

test('delete and clear keep the weight right and do not call onEvict', () => {
  const { cache, events } = tracked({ capacity: 3 });
  cache.set('a', 1);
  cache.set('b', 2);
  assert.equal(cache.delete('a'), true);
  assert.equal(cache.delete('a'), false);
  cache.set('c', 3);
  cache.set('d', 4);
  assert.deepEqual(cache.keys(), ['b', 'c', 'd']);
  cache.clear();
  cache.set('e', 5);
  assert.deepEqual(cache.keys(), ['e']);
  assert.deepEqual(events, []);
  assert.equal(cache.weight, 1);
});

test('falsy values are cached like any other', () => {
  const { cache } = tracked({ capacity: 2 });
  cache.set('zero', 0);
  cache.set('empty', '');
  assert.equal(cache.get('zero'), 0);
  cache.set('x', 1);
  assert.deepEqual(cache.keys(), ['zero', 'x']);
});

test('matches a reference model on a random workload', () => {
  let seed = 42;
  const rnd = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const { cache } = tracked({ capacity: 12, weigh: (v) => v });
  let model = []; // [key, weight], least recent first
  for (let i = 0; i < 2000; i++) {
    const key = `k${rnd(10)}`;
    if (rnd(3) === 0) {
      const hit = model.find((e) => e[0] === key);
      assert.equal(cache.get(key), hit ? hit[1] : undefined);
      if (hit) model = [...model.filter((e) => e[0] !== key), hit];
    } else {
      const w = 1 + rnd(6);
      cache.set(key, w);
      model = [...model.filter((e) => e[0] !== key), [key, w]];
      while (model.reduce((s, e) => s + e[1], 0) > 12) model.shift();
    }
    assert.deepEqual(cache.keys(), model.map((e) => e[0]), `step ${i}`);
  }
});
