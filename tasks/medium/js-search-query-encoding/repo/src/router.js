'use strict';
const { parseQuery } = require('./util/qs');

/** Turns the request URL of GET /search into the search request. */
function handleSearch(url) {
  const noFragment = url.split('#')[0];
  const i = noFragment.indexOf('?');
  const params = parseQuery(i === -1 ? '' : noFragment.slice(i + 1));
  const tags = params.tags === undefined ? [] : [].concat(params.tags);
  const page = Number.parseInt(params.page, 10);
  return {
    q: typeof params.q === 'string' ? params.q : [].concat(params.q ?? '')[0],
    tags,
    page: Number.isInteger(page) && page > 0 ? page : 1,
  };
}

module.exports = { handleSearch };
