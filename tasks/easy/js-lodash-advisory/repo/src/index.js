'use strict';

/** Groups report rows by a key; lodash is loaded lazily in production. */
function groupRows(rows, key) {
  const out = {};
  for (const row of rows) {
    (out[row[key]] ||= []).push(row);
  }
  return out;
}

module.exports = { groupRows };
