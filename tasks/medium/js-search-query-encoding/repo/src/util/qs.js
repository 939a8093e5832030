'use strict';

/**
 * Serialises `params` as a query string (without the leading `?`).
 * Array values become repeated keys; null and undefined are skipped.
 */
function buildQuery(params) {
  const parts = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) parts.push(`${key}=${v}`);
  }
  return parts.join('&');
}

/**
 * Parses a query string (with or without `?`). A key given several times
 * yields an array of its values, in order.
 */
function parseQuery(qs) {
  const out = {};
  const s = qs.startsWith('?') ? qs.slice(1) : qs;
  for (const pair of s.split('&')) {
    if (!pair) continue;
    const [key, value = ''] = pair.split('=');
    const k = decodeURIComponent(key);
    const v = decodeURIComponent(value);
    if (Object.prototype.hasOwnProperty.call(out, k)) {
      out[k] = [].concat(out[k], v);
    } else {
      out[k] = v;
    }
  }
  return out;
}

module.exports = { buildQuery, parseQuery };
