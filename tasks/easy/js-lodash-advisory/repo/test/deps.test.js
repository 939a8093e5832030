'use strict';
// Policy checks on the dependency manifest (run by the release pipeline).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));

// Lowest version a range can resolve to; only the forms we allow in this repo.
function floor(range) {
  const m = /^(?:[~^]|>=\s*)?(\d+)\.(\d+)\.(\d+)$/.exec(range.trim());
  assert.ok(m, `unsupported version range ${JSON.stringify(range)}`);
  return m.slice(1).map(Number);
}

function cmp(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

test('lodash is a runtime dependency', () => {
  assert.ok(manifest.dependencies.lodash, 'lodash must stay in dependencies');
  assert.equal(manifest.devDependencies.lodash, undefined);
});

test('lodash has the GHSA-35jh-r3h4-6jhm fix', () => {
  const v = floor(manifest.dependencies.lodash);
  assert.ok(cmp(v, [4, 17, 21]) >= 0, `lodash ${manifest.dependencies.lodash} is vulnerable`);
});

test('lodash stays on major 4', () => {
  const range = manifest.dependencies.lodash.trim();
  assert.equal(floor(range)[0], 4);
  assert.ok(!range.startsWith('>='), 'an open-ended range could pull lodash 5');
});

test('approved pins are unchanged', () => {
  assert.equal(manifest.dependencies.express, '4.19.2');
  assert.equal(manifest.dependencies.pino, '8.19.0');
  assert.equal(manifest.devDependencies.eslint, '8.57.0');
  assert.deepEqual(Object.keys(manifest.dependencies).sort(), ['express', 'lodash', 'pino']);
});

test('the app still loads', () => {
  const { groupRows } = require('../src/index');
  assert.deepEqual(groupRows([{ k: 'a' }, { k: 'b' }, { k: 'a' }], 'k').a.length, 2);
});
