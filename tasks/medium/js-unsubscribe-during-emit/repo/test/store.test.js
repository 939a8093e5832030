'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Store } = require('../src/store');
const { Emitter } = require('../src/emitter');

test('a subscriber that unsubscribes itself does not starve the next one', () => {
  const store = new Store({ n: 0 });
  const calls = [];
  const unsubscribe = store.subscribe((s) => {
    calls.push(['first', s.n]);
    unsubscribe();
  });
  store.subscribe((s) => calls.push(['second', s.n]));
  store.subscribe((s) => calls.push(['third', s.n]));
  store.setState({ n: 1 });
  store.setState({ n: 2 });
  assert.deepEqual(calls, [
    ['first', 1],
    ['second', 1],
    ['third', 1],
    ['second', 2],
    ['third', 2],
  ]);
});

test('several once-listeners all fire exactly once', () => {
  const e = new Emitter();
  const seen = [];
  e.once('x', (v) => seen.push(`a${v}`));
  e.once('x', (v) => seen.push(`b${v}`));
  e.once('x', (v) => seen.push(`c${v}`));
  e.on('x', (v) => seen.push(`d${v}`));
  assert.equal(e.emit('x', 1), true);
  e.emit('x', 2);
  assert.deepEqual(seen, ['a1', 'b1', 'c1', 'd1', 'd2']);
  assert.equal(e.listenerCount('x'), 1);
});

test('a listener removed by an earlier one still gets the current event', () => {
  const e = new Emitter();
  const seen = [];
  const b = () => seen.push('b');
  e.on('x', () => {
    seen.push('a');
    e.off('x', b);
  });
  e.on('x', b);
  e.emit('x');
  e.emit('x');
  assert.deepEqual(seen, ['a', 'b', 'a']);
});

test('a listener added during emit waits for the next event', () => {
  const e = new Emitter();
  const seen = [];
  e.on('x', (v) => {
    seen.push(`outer${v}`);
    if (v === 1) e.on('x', (w) => seen.push(`inner${w}`));
  });
  e.emit('x', 1);
  e.emit('x', 2);
  assert.deepEqual(seen, ['outer1', 'outer2', 'inner2']);
});

test('nested emits see the listener set of their own time', () => {
  const e = new Emitter();
  const seen = [];
  let once = true;
  e.on('x', (v) => {
    seen.push(`a${v}`);
    if (once) {
      once = false;
      e.emit('x', 'nested');
    }
  });
  e.on('x', (v) => seen.push(`b${v}`));
  e.emit('x', 'top');
  assert.deepEqual(seen, ['atop', 'anested', 'bnested', 'btop']);
});

test('unsubscribe is idempotent and precise', () => {
  const store = new Store(0);
  const seen = [];
  const f = (s) => seen.push(`f${s}`);
  const off1 = store.subscribe(f);
  store.subscribe(f);
  off1();
  off1();
  store.setState(1);
  assert.deepEqual(seen, ['f1']);
});

test('setState passes next and previous state', () => {
  const store = new Store({ n: 1 });
  let got;
  store.subscribe((next, prev) => (got = [next.n, prev.n]));
  store.setState((s) => ({ n: s.n + 1 }));
  assert.deepEqual(got, [2, 1]);
  assert.equal(new Emitter().emit('nothing'), false);
});
