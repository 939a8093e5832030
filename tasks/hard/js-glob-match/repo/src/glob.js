'use strict';

/**
 * Glob patterns for the deploy include/exclude lists. Paths use `/` and
 * are matched as a whole (no implicit prefix or suffix).
 *
 *   ?        one character other than `/`
 *   *        any run of characters other than `/` (possibly empty)
 *   **       as a whole path segment: any number of segments, including
 *            none (`a/**` + `/b` matches a/b, a/x/b, a/x/y/b; a leading
 *            `**` + `/b` matches b at any depth; a trailing `/**` matches
 *            everything below the directory, but not the directory
 *            itself). Anywhere else `**` acts like `*`.
 *   [abc]    one character from the set; ranges like [a-z]; [!abc] or
 *            [^abc] negates. A class never matches `/`.
 *   \x       the character x literally (e.g. \* or \[)
 *
 * Every other character, including . + ( ) $ ^ | { }, is literal.
 * Dot files are not special.
 */
function globToRegExp(pattern) {
  const re = pattern
    .replace(/\*\*/g, '.*')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

function matches(pattern, path) {
  return globToRegExp(pattern).test(path);
}

/** Paths selected by `include` globs and not removed by `exclude` globs. */
function select(paths, include, exclude = []) {
  return paths.filter(
    (p) => include.some((g) => matches(g, p)) && !exclude.some((g) => matches(g, p)),
  );
}

module.exports = { globToRegExp, matches, select };
