'use strict';

/**
 * Shortens `str` to at most `max` characters, marking the cut with
 * `ellipsis`. Strings that fit are returned unchanged.
 */
function truncate(str, max, ellipsis = '...') {
  if (!Number.isInteger(max) || max < 0) {
    throw new RangeError('max must be a non-negative integer');
  }
  if (str.length <= max) {
    return str;
  }
  if (max <= ellipsis.length) {
    return ellipsis.slice(0, max);
  }
  return str.slice(0, max - ellipsis.length + 1) + ellipsis;
}

/** Truncates every title of a result list for the fixed-width column. */
function formatTitles(results, width) {
  return results.map((r) => ({ ...r, title: truncate(r.title, width) }));
}

module.exports = { truncate, formatTitles };
