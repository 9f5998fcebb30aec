/**
 * @module glob
 * The subset of globby that a `package.json` `main` uses (worker `src/startApp.ts`): `*`, `?`, `**`, and
 * `{a,b}` braces (nested allowed). Like globby it returns files only, skips dot entries unless the pattern
 * names them, and resolves relative to the app root. Order: brace alternatives in the order written, and within
 * one alternative sorted by path, duplicates dropped — deterministic, which globby's traversal order is not.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Expands `{a,b}` groups (nested, comma-separated) into every alternative, left to right. */
export function expandBraces(pattern: string): string[] {
  const open = findTopLevelBrace(pattern);
  if (!open) return [pattern];
  const { start, end, parts } = open;
  const prefix = pattern.slice(0, start);
  const suffix = pattern.slice(end + 1);
  const out: string[] = [];
  for (const part of parts) {
    for (const expanded of expandBraces(prefix + part + suffix)) out.push(expanded);
  }
  return out;
}

function findTopLevelBrace(pattern: string): { start: number; end: number; parts: string[] } | undefined {
  for (let start = 0; start < pattern.length; start++) {
    if (pattern[start] !== '{') continue;
    let depth = 0;
    let partStart = start + 1;
    const parts: string[] = [];
    for (let i = start; i < pattern.length; i++) {
      const ch = pattern[i];
      if (ch === '{') depth++;
      else if (ch === '}') {
        depth--;
        if (depth === 0) {
          parts.push(pattern.slice(partStart, i));
          // `{a}` without a comma is a literal in globby (braces needs a list or range)
          if (parts.length > 1) return { start, end: i, parts };
          break;
        }
      } else if (ch === ',' && depth === 1) {
        parts.push(pattern.slice(partStart, i));
        partStart = i + 1;
      }
    }
  }
  return undefined;
}

const MAGIC = /[*?[]/;

/** One path segment (no `/`) as an anchored RegExp: `*` → any run, `?` → one char, `[...]` → class. */
export function segmentToRegExp(segment: string): RegExp {
  let source = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i] as string;
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close === -1) source += '\\[';
      else {
        let body = segment.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        source += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else source += ch.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function listDir(dir: string): { name: string; isDir: boolean; isFile: boolean }[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .map((e) => {
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const st = statSync(join(dir, e.name));
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          // dangling link: neither
        }
      }
      return { name: e.name, isDir, isFile };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function walk(root: string, rel: string, segments: string[], index: number, out: string[]): void {
  const segment = segments[index];
  if (segment === undefined) return;
  const last = index === segments.length - 1;
  const dir = join(root, rel);
  const joinRel = (name: string) => (rel === '' ? name : `${rel}/${name}`);

  if (segment === '**') {
    if (last) {
      // `dir/**` means every file below dir
      for (const entry of listDir(dir)) {
        if (entry.name.startsWith('.')) continue;
        if (entry.isFile) out.push(joinRel(entry.name));
        else if (entry.isDir && entry.name !== 'node_modules')
          walk(root, joinRel(entry.name), segments, index, out);
      }
      return;
    }
    walk(root, rel, segments, index + 1, out);
    for (const entry of listDir(dir)) {
      // node_modules is never an app entry point and can hold thousands of files
      if (entry.isDir && !entry.name.startsWith('.') && entry.name !== 'node_modules') {
        walk(root, joinRel(entry.name), segments, index, out);
      }
    }
    return;
  }

  if (segment === '.' || segment === '') {
    walk(root, rel, segments, index + 1, out);
    return;
  }

  if (!MAGIC.test(segment)) {
    const child = joinRel(segment);
    if (last) {
      if (isFile(join(root, child))) out.push(child);
    } else walk(root, child, segments, index + 1, out);
    return;
  }

  const re = segmentToRegExp(segment);
  const allowDot = segment.startsWith('.');
  for (const entry of listDir(dir)) {
    if (entry.name.startsWith('.') && !allowDot) continue;
    if (!re.test(entry.name)) continue;
    if (last) {
      if (entry.isFile) out.push(joinRel(entry.name));
    } else if (entry.isDir) walk(root, joinRel(entry.name), segments, index + 1, out);
  }
}

/** Files under `root` matching `pattern`, as `/`-separated paths relative to `root`. */
export function matchFiles(pattern: string, root: string): string[] {
  const seen = new Set<string>();
  const result: string[] = [];
  for (const alternative of expandBraces(pattern.replace(/\\/g, '/'))) {
    const found: string[] = [];
    const segments = alternative.replace(/^\.\//, '').split('/');
    if (alternative.startsWith('/')) {
      segments.shift();
      walk('/', '', segments, 0, found);
    } else walk(root, '', segments, 0, found);
    found.sort();
    for (const file of found) {
      const key = alternative.startsWith('/') ? `/${file}` : file;
      if (!seen.has(key)) {
        seen.add(key);
        result.push(key);
      }
    }
  }
  return result;
}
