'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { matches, select } = require('../src/glob');

function yes(pattern, ...paths) {
  for (const p of paths) assert.equal(matches(pattern, p), true, `${pattern} should match ${p}`);
}
function no(pattern, ...paths) {
  for (const p of paths) assert.equal(matches(pattern, p), false, `${pattern} should not match ${p}`);
}

test('literal characters', () => {
  yes('main.js', 'main.js');
  no('main.js', 'mainxjs', 'src/main.js', 'main.jsx');
  yes('a+b(1)$.txt', 'a+b(1)$.txt');
  no('a+b(1)$.txt', 'aab1.txt');
  yes('v1.{x}|^', 'v1.{x}|^');
});

test('single star stays inside a segment', () => {
  yes('*.js', 'a.js', '.js', 'x.y.js');
  no('*.js', 'src/a.js', 'a.jsx');
  yes('src/*/index.js', 'src/a/index.js');
  no('src/*/index.js', 'src/index.js', 'src/a/b/index.js');
  yes('a*b*c', 'abc', 'aXbYc', 'abbc');
  no('a*b*c', 'a/b/c');
});

test('question mark', () => {
  yes('file?.txt', 'file1.txt', 'fileA.txt');
  no('file?.txt', 'file.txt', 'file12.txt', 'file/.txt');
});

test('double star between segments matches zero or more directories', () => {
  yes('src/**/test.js', 'src/test.js', 'src/a/test.js', 'src/a/b/c/test.js');
  no('src/**/test.js', 'src/atest.js', 'lib/test.js', 'src/a/test.jsx', 'srcx/test.js');
});

test('leading double star', () => {
  yes('**/*.map', 'app.map', 'dist/app.map', 'dist/js/vendor/x.map');
  no('**/*.map', 'app.map.gz', 'dist/app.mapx');
  yes('**/node_modules/**', 'node_modules/x/index.js', 'a/node_modules/b/c.js');
  no('**/node_modules/**', 'node_modules', 'a/node_modules', 'my_node_modules/x');
});

test('trailing double star', () => {
  yes('build/**', 'build/a', 'build/a/b/c.txt');
  no('build/**', 'build', 'builds/a', 'x/build/a');
  yes('**', 'a', 'a/b/c');
});

test('double star inside a segment is a single star', () => {
  yes('a**b', 'ab', 'axxb');
  no('a**b', 'a/b', 'ax/yb');
  yes('x/**.js', 'x/a.js');
  no('x/**.js', 'x/y/a.js');
});

test('character classes', () => {
  yes('log[0-9].txt', 'log0.txt', 'log7.txt');
  no('log[0-9].txt', 'logx.txt', 'log10.txt');
  yes('[abc]?', 'ax', 'c9');
  no('[abc]?', 'dx');
  yes('[!a-c]*', 'dog', 'zebra');
  no('[!a-c]*', 'apple', 'cat');
  yes('[^.]*', 'visible');
  no('[^.]*', '.hidden');
  no('a[/]b', 'a/b');
  no('a[!x]b', 'a/b');
  yes('[.+]x', '.x', '+x');
  no('[.+]x', 'ax');
});

test('escapes', () => {
  yes('\\*.txt', '*.txt');
  no('\\*.txt', 'a.txt');
  yes('what\\?', 'what?');
  no('what\\?', 'whatx');
  yes('\\[draft\\]*', '[draft] notes');
  no('\\[draft\\]*', 'd notes');
});

test('deploy selection', () => {
  const paths = [
    'index.html',
    'assets/app.js',
    'assets/app.js.map',
    'assets/img/logo.png',
    'assets/img/.DS_Store',
    'src/app.ts',
    'node_modules/x/index.js',
    'README.md',
  ];
  assert.deepEqual(select(paths, ['*.html', 'assets/**'], ['**/*.map', '**/.DS_Store']), [
    'index.html',
    'assets/app.js',
    'assets/img/logo.png',
  ]);
});
