import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { expandBraces, matchFiles, segmentToRegExp } from '../../../tools/devhost/glob.ts';

void describe('brace expansion', () => {
  void it('expands lists left to right, nested, and leaves single-item braces literal', () => {
    assert.deepEqual(expandBraces('src/{a,b}.js'), ['src/a.js', 'src/b.js']);
    assert.deepEqual(expandBraces('{x,y{1,2}}/{m,n}'), ['x/m', 'x/n', 'y1/m', 'y1/n', 'y2/m', 'y2/n']);
    assert.deepEqual(expandBraces('a{b}c'), ['a{b}c']);
    assert.deepEqual(expandBraces('plain.js'), ['plain.js']);
  });

  void it('turns a segment into an anchored expression', () => {
    assert.equal(segmentToRegExp('*.js').test('a.js'), true);
    assert.equal(segmentToRegExp('*.js').test('a.jsx'), false);
    assert.equal(segmentToRegExp('?.js').test('ab.js'), false);
    assert.equal(segmentToRegExp('[ab].js').test('b.js'), true);
    assert.equal(segmentToRegExp('a+b.js').test('a+b.js'), true);
  });
});

void describe('matchFiles', () => {
  let root = '';
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'devhost-glob-'));
    for (const file of [
      'dist/functions/b.js',
      'dist/functions/a.js',
      'dist/functions/a.js.map',
      'dist/functions/.hidden.js',
      'dist/functions/nested/deep/c.js',
      'dist/index.js',
      'node_modules/pkg/index.js',
    ]) {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), '');
    }
    mkdirSync(join(root, 'dist/functions/dir.js'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  void it('matches * within one directory, files only, sorted, no dot files', () => {
    assert.deepEqual(matchFiles('dist/functions/*.js', root), ['dist/functions/a.js', 'dist/functions/b.js']);
  });

  void it('matches ** across zero or more directories, skipping node_modules', () => {
    assert.deepEqual(matchFiles('dist/**/*.js', root), [
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/functions/nested/deep/c.js',
      'dist/index.js',
    ]);
    assert.deepEqual(matchFiles('**/index.js', root), ['dist/index.js']);
  });

  void it('keeps brace alternatives in written order and drops duplicates', () => {
    assert.deepEqual(matchFiles('dist/{index.js,functions/*.js,functions/a.js}', root), [
      'dist/index.js',
      'dist/functions/a.js',
      'dist/functions/b.js',
    ]);
  });

  void it('resolves a plain path and returns nothing for no match', () => {
    assert.deepEqual(matchFiles('./dist/index.js', root), ['dist/index.js']);
    assert.deepEqual(matchFiles('dist/missing/*.js', root), []);
    assert.deepEqual(matchFiles('dist/functions', root), []);
  });
});
