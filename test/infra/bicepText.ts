/**
 * Reads the Bicep sources as text, so the infra checks run in `npm test` without the Bicep CLI (tools/bicep.sh
 * compiles them separately). Only what the checks need: comments stripped (strings kept intact), module paths,
 * params, and the app settings of the one `Microsoft.Web/sites/config` 'appsettings' resource.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface BicepFile {
  /** Path relative to the repo root, with forward slashes. */
  path: string;
  text: string;
  /** The text with `//` and `/* *\/` comments blanked out; string literals untouched. */
  code: string;
}

export interface AppSetting {
  name: string;
  /** The value expression as written (one line), e.g. `'@Microsoft.KeyVault(SecretUri=${uri})'`. */
  value: string;
  /** The variable that holds it. */
  variable: string;
}

/** Every `.bicep` file under `dir`, sorted. */
export function readBicepFiles(repoRoot: string, dir: string): BicepFile[] {
  const out: BicepFile[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.bicep')) {
        const text = readFileSync(full, 'utf8');
        out.push({ path: relative(repoRoot, full).split('\\').join('/'), text, code: stripComments(text) });
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** Blanks comments (keeping line breaks) while leaving `'…'` and `'''…'''` strings alone. */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("'''", i)) {
      const end = text.indexOf("'''", i + 3);
      const stop = end === -1 ? text.length : end + 3;
      out += text.slice(i, stop);
      i = stop;
    } else if (text[i] === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== "'") j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else {
      out += text[i];
      i += 1;
    }
  }
  return out;
}

/** `module <symbol> '<path>'` declarations. */
export function moduleRefs(code: string): { symbol: string; path: string }[] {
  return [...code.matchAll(/^module\s+(\w+)\s+'([^']+)'/gm)].map((m) => ({
    symbol: m[1] ?? '',
    path: m[2] ?? '',
  }));
}

/** `param <name> <type> [= default]` declarations (decorators ignored). */
export function params(code: string): { name: string; hasDefault: boolean }[] {
  return [...code.matchAll(/^param\s+(\w+)\s+\w+(\s*=)?/gm)].map((m) => ({
    name: m[1] ?? '',
    hasDefault: !!m[2],
  }));
}

/** The body (between the outer braces) of every top-level resource of `type`, keyed by symbol. */
export function resourceBodies(code: string, type: string): { symbol: string; body: string }[] {
  const found: { symbol: string; body: string }[] = [];
  const header = new RegExp(
    `^resource\\s+(\\w+)\\s+'${type.replace(/[/.]/g, '\\$&')}@[^']+'[^{\\n]*\\{`,
    'gm',
  );
  for (const m of code.matchAll(header)) {
    const start = (m.index ?? 0) + m[0].length;
    const end = code.indexOf('\n}', start);
    found.push({ symbol: m[1] ?? '', body: code.slice(start, end === -1 ? code.length : end) });
  }
  return found;
}

/** The text of `var <name> = …` up to the next top-level statement. */
export function variableText(code: string, name: string): string | undefined {
  const lines = code.split('\n');
  const first = lines.findIndex((l) => new RegExp(`^var\\s+${name}\\s*=`).test(l));
  if (first === -1) return undefined;
  let last = first + 1;
  while (last < lines.length && !/^[^\s}]/.test(lines[last] ?? '')) last += 1;
  return lines.slice(first, last).join('\n');
}

/**
 * App settings of the `appsettings` config resource: its `properties` must be one variable or `union(v1, v2, …)`
 * of variables, and every `NAME: value` line inside those variables is a setting.
 */
export function appSettingsOf(code: string): {
  resource: string;
  variables: string[];
  settings: AppSetting[];
} {
  const configs = resourceBodies(code, 'Microsoft.Web/sites/config').filter((r) =>
    /^\s*name:\s*'appsettings'\s*$/m.test(r.body),
  );
  if (configs.length !== 1)
    throw new Error(`expected one 'appsettings' config resource, found ${configs.length}`);
  const config = configs[0]!;
  // One variable, or union() of variables on one line or one per line.
  const props =
    /^\s*properties:\s*(union\([^)]*\))/m.exec(config.body)?.[1] ??
    /^\s*properties:\s*(.+)$/m.exec(config.body)?.[1] ??
    '';
  const inner = /^union\(([^)]*)\)$/.exec(props.trim())?.[1] ?? props;
  const variables = inner
    .split(',')
    .map((s) => s.trim())
    .filter((s, i, all) => s !== '' || i < all.length - 1);
  if (variables.some((v) => !/^\w+$/.test(v))) {
    throw new Error(`appsettings properties must be a variable or union() of variables, got: ${props}`);
  }
  const settings: AppSetting[] = [];
  for (const variable of variables) {
    const text = variableText(code, variable);
    if (text === undefined) throw new Error(`variable ${variable} not found`);
    for (const m of text.matchAll(/^\s+(\w+|'[^']+')\s*:\s*(.+)$/gm)) {
      settings.push({ name: (m[1] ?? '').replace(/'/g, ''), value: (m[2] ?? '').trim(), variable });
    }
  }
  return { resource: config.symbol, variables, settings };
}
