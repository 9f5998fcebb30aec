/**
 * @module loader
 * Loads the app's entry points like the worker (`src/startApp.ts`, `src/loadScriptFile.ts`): every file the
 * `main` pattern matches, one after the other, each awaited; `.mjs` (or `.js` under `"type": "module"`) through
 * `import()`, everything else through `require`. A load error stops startup, as on Node ≥ 20.
 */
import { createRequire } from 'node:module';
import { extname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hasMagic, matchFiles } from './glob.ts';

export class EntryPointError extends Error {
  override name = 'EntryPointError';
}

export function isEsModule(file: string, packageIsModule: boolean): boolean {
  const ext = extname(file).toLowerCase();
  if (ext === '.mjs') return true;
  if (ext === '.cjs') return false;
  return packageIsModule;
}

/** Resolves the pattern; zero matches is an error worded as the worker words it (`src/startApp.ts`). */
export function resolveEntryPoints(appDir: string, pattern: string): string[] {
  const files = matchFiles(pattern, appDir);
  if (files.length === 0) {
    const what = hasMagic(pattern) ? 'Found zero files matching the supplied pattern' : 'File does not exist';
    throw new EntryPointError(`${what} "${pattern}" (package.json "main") in ${appDir}.`);
  }
  return files.map((f) => (isAbsolute(f) ? f : join(appDir, f)));
}

export async function loadEntryPoints(files: readonly string[], packageIsModule: boolean): Promise<void> {
  for (const file of files) {
    try {
      if (isEsModule(file, packageIsModule)) {
        await import(pathToFileURL(file).href);
      } else {
        createRequire(file)(file);
      }
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      throw new EntryPointError(`Unable to load entry point "${file}": ${message}`);
    }
  }
}
