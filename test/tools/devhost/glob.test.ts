import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasMagic, matchFiles } from '../../../tools/devhost/glob.ts';

void describe('matchFiles (package.json main, as the worker resolves it with globby)', () => {
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

  void it('matches ** across zero or more directories, node_modules included (globby skips none)', () => {
    assert.deepEqual(matchFiles('dist/**/*.js', root), [
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/functions/nested/deep/c.js',
      'dist/index.js',
    ]);
    assert.deepEqual(matchFiles('**/index.js', root), ['dist/index.js', 'node_modules/pkg/index.js']);
  });

  void it('expands braces and drops duplicates', () => {
    assert.deepEqual(matchFiles('dist/{index.js,functions/*.js,functions/a.js}', root), [
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/index.js',
    ]);
  });

  void it('resolves a plain path and returns nothing for no match or a directory', () => {
    assert.deepEqual(matchFiles('./dist/index.js', root), ['dist/index.js']);
    assert.deepEqual(matchFiles('dist/missing/*.js', root), []);
    assert.deepEqual(matchFiles('dist/functions', root), []);
    assert.equal(hasMagic('dist/functions/*.js'), true);
    assert.equal(hasMagic('dist/index.js'), false);
  });
});
