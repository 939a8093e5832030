'use strict';

/**
 * A least-recently-used cache bounded by total weight.
 *
 * - `capacity`: the maximum total weight kept (>= 0).
 * - `weigh(value, key)`: the weight of an entry (default 1 per entry).
 * - `onEvict(key, value, reason)`: called when an entry leaves the cache
 *   because of the capacity ('evict') or because `set` replaced its value
 *   ('replace'). Not called for `delete` or `clear`.
 *
 * `get` and `set` make an entry the most recently used; `has` and `peek`
 * do not. When an insert makes the total weight exceed the capacity,
 * least recently used entries are evicted until it fits. An entry heavier
 * than the whole capacity is not stored (`set` returns false).
 */
class LRUCache {
  constructor({ capacity, weigh = () => 1, onEvict = () => {} }) {
    if (!Number.isFinite(capacity) || capacity < 0) {
      throw new RangeError('capacity must be a non-negative number');
    }
    this.capacity = capacity;
    this.weigh = weigh;
    this.onEvict = onEvict;
    this.map = new Map(); // key -> { value, weight }
    this.weight = 0;
  }

  get size() {
    return this.map.size;
  }

  has(key) {
    return this.map.has(key);
  }

  peek(key) {
    const e = this.map.get(key);
    return e === undefined ? undefined : e.value;
  }

  get(key) {
    const e = this.map.get(key);
    return e === undefined ? undefined : e.value;
  }

  set(key, value) {
    const weight = this.weigh(value, key);
    if (this.map.has(key)) {
      const old = this.map.get(key);
      this.weight -= old.weight;
      this.onEvict(key, old.value, 'replace');
    }
    if (weight > this.capacity) return false;
    this.map.set(key, { value, weight });
    this.weight += weight;
    if (this.weight > this.capacity) {
      const [oldestKey, oldest] = this.map.entries().next().value;
      this.map.delete(oldestKey);
      this.weight -= oldest.weight;
      this.onEvict(oldestKey, oldest.value, 'evict');
    }
    return true;
  }

  delete(key) {
    const e = this.map.get(key);
    if (e === undefined) return false;
    this.map.delete(key);
    this.weight -= e.weight;
    return true;
  }

  clear() {
    this.map.clear();
    this.weight = 0;
  }

  /** Keys from least to most recently used. */
  keys() {
    return [...this.map.keys()];
  }
}

module.exports = { LRUCache };
