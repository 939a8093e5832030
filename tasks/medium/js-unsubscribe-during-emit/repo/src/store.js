'use strict';
const { Emitter } = require('./emitter');

/** Holds the app state and tells subscribers about every change. */
class Store {
  constructor(initial) {
    this.state = initial;
    this.events = new Emitter();
  }

  getState() {
    return this.state;
  }

  /** Applies `update(state)` and notifies subscribers with (next, prev). */
  setState(update) {
    const prev = this.state;
    this.state = typeof update === 'function' ? update(prev) : update;
    this.events.emit('change', this.state, prev);
  }

  /** Registers `fn(next, prev)`; returns a function that unsubscribes it. */
  subscribe(fn) {
    this.events.on('change', fn);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.events.off('change', fn);
    };
  }
}

module.exports = { Store };
