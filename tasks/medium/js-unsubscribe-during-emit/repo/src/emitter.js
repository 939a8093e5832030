'use strict';

/** A minimal synchronous event emitter. */
class Emitter {
  constructor() {
    this.listeners = new Map();
  }

  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
    return this;
  }

  off(event, fn) {
    const list = this.listeners.get(event);
    if (!list) return this;
    const i = list.lastIndexOf(fn);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.listeners.delete(event);
    return this;
  }

  once(event, fn) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      fn.apply(this, args);
    };
    return this.on(event, wrapper);
  }

  /** Calls the listeners of `event` in order; true when there were any. */
  emit(event, ...args) {
    const list = this.listeners.get(event);
    if (!list) return false;
    for (let i = 0; i < list.length; i++) {
      list[i].apply(this, args);
    }
    return true;
  }

  listenerCount(event) {
    return (this.listeners.get(event) || []).length;
  }
}

module.exports = { Emitter };
