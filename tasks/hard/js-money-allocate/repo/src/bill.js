'use strict';
const { allocate } = require('./allocate');

/**
 * Splits a bill of `totalCents` between people by their weights
 * (e.g. nights stayed). Returns { name: cents } in input order.
 */
function splitBill(totalCents, people) {
  const shares = allocate(
    totalCents,
    people.map((p) => p.weight),
  );
  return Object.fromEntries(people.map((p, i) => [p.name, shares[i]]));
}

module.exports = { splitBill };
