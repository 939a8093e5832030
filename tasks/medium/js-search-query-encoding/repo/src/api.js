'use strict';
const { buildQuery } = require('./util/qs');

/** URL of the search endpoint for a query typed in the search box. */
function searchUrl(base, { q, tags = [], page } = {}) {
  const query = buildQuery({ q, tags, page: page > 1 ? page : undefined });
  return `${base.replace(/\/$/, '')}/search?${query}`;
}

module.exports = { searchUrl };
