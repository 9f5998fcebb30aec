/**
 * @module glob
 * Resolves package.json `main` like the worker does with `globby(pattern, { cwd: appDir })`
 * (azure-functions-nodejs-worker `src/startApp.ts`): braces, `*`, `**`, no dot files, files only, and —
 * like globby's defaults — no folder skipped. Matching is done by the maintained `tinyglobby` (picomatch);
 * the result is sorted so the load order does not depend on directory listing order.
 */
import { globSync, isDynamicPattern } from 'tinyglobby';

/** Files under `root` matching `pattern`, as `/`-separated paths relative to `root` (absolute stays absolute). */
export function matchFiles(pattern: string, root: string): string[] {
  const normalized = pattern.replace(/\\/g, '/');
  const files = globSync(normalized, {
    cwd: root,
    onlyFiles: true,
    dot: false,
    expandDirectories: false,
    absolute: normalized.startsWith('/'),
  });
  return files.sort();
}

/** The worker's wording differs for a pattern with glob syntax and a plain path. */
export function hasMagic(pattern: string): boolean {
  return isDynamicPattern(pattern);
}
