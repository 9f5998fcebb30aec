// "No prompt on a first `azd up --no-prompt`, and no key rotation by accident", checked over infra/main.bicep,
// infra/main.parameters.json and the hooks azure.yaml declares.
//
// How azd resolves a Bicep parameter (Azure/azure-dev cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go,
// ensureParameters + armParameterFileValue, read at 1.31):
//   1. a non-empty value from main.parameters.json (after ${VAR} substitution from the azd environment) wins;
//   2. else a parameter with a default needs nothing;
//   3. else a value saved earlier in .azure/<env>/config.json under `infra.parameters.<name>` is reused;
//   4. else a `@metadata({ azd: { type: 'generate', config } })` string parameter is generated once
//      (pkg/password Generate) and saved there (secure ones as a reference into azd's local secret store);
//   5. else azd prompts — or, with --no-prompt, fails listing the missing inputs.
// And `azd up` runs that resolution BEFORE any hook of the workflow (cmd/up.go), so a variable a hook sets is not
// there on the first run. Built-ins azd sets itself: AZURE_ENV_NAME (env creation), AZURE_LOCATION (env creation
// or --location), AZURE_PRINCIPAL_ID (the signed-in principal).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../shared/config.ts';
import { stripComments } from './bicepText.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILT_INS: Record<string, string> = {
  AZURE_ENV_NAME: 'environment name (azd env new / azd init)',
  AZURE_LOCATION: 'location (azd env new --location, azd up --location)',
  AZURE_PRINCIPAL_ID: 'signed-in principal',
};

interface Param {
  name: string;
  type: string;
  hasDefault: boolean;
  decorators: string;
}

/** Params of a Bicep file with the decorator text above each (comments removed). */
function bicepParams(code: string): Param[] {
  const out: Param[] = [];
  let last = 0;
  for (const m of code.matchAll(/^param\s+(\w+)\s+(\w+)(\s*=)?.*$/gm)) {
    const start = m.index ?? 0;
    out.push({
      name: m[1] ?? '',
      type: m[2] ?? '',
      hasDefault: !!m[3],
      decorators: code.slice(last, start),
    });
    last = start + m[0].length;
  }
  return out;
}

interface AzdMetadata {
  type?: string;
  config?: {
    length?: number;
    noLower?: boolean;
    noUpper?: boolean;
    noNumeric?: boolean;
    noSpecial?: boolean;
  };
}

/** `@metadata({ azd: … })` of a param (single-line Bicep object literal) as JSON. */
function azdMetadata(decorators: string): AzdMetadata | undefined {
  const text = /@metadata\((\{.*\})\)\s*$/m.exec(decorators)?.[1];
  if (!text) return undefined;
  const json = text.replace(/'/g, '"').replace(/(\w+)\s*:/g, '"$1":');
  return (JSON.parse(json) as { azd?: AzdMetadata }).azd;
}

function minLength(decorators: string): number {
  return Number(/@minLength\((\d+)\)/.exec(decorators)?.[1] ?? 0);
}

/** The characters azd's password generator draws from for `config` (pkg/password/generator.go). */
function azdAlphabet(config: NonNullable<AzdMetadata['config']>): string {
  let alphabet = '';
  if (!config.noLower) alphabet += 'abcdefghijklmnopqrstuvwxyz';
  if (!config.noUpper) alphabet += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  if (!config.noNumeric) alphabet += '0123456789';
  if (!config.noSpecial) alphabet += '-_.{}~()*+!';
  return alphabet;
}

/** Variables the hook scripts azure.yaml declares set in the azd environment (`runAzd(['env', 'set', NAME …`). */
function variablesHooksSet(): { hooks: string[]; set: Set<string> } {
  const project = parseYaml(readFileSync(join(root, 'azure.yaml'), 'utf8')) as {
    hooks?: Record<string, { posix?: { run?: string }; run?: string }>;
    services?: Record<string, { hooks?: Record<string, { posix?: { run?: string }; run?: string }> }>;
  };
  const all = [
    ...Object.values(project.hooks ?? {}),
    ...Object.values(project.services ?? {}).flatMap((s) => Object.values(s.hooks ?? {})),
  ];
  const scripts = new Set<string>();
  for (const hook of all) {
    const run = hook.posix?.run ?? hook.run ?? '';
    for (const m of run.matchAll(/\bnode\s+(\S+\.(?:c|m)?js)\b/g)) scripts.add(m[1] ?? '');
  }
  const set = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    assert.ok(existsSync(file), `hook script ${file} not found`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\[\s*'env'\s*,\s*'set(?:-secret)?'\s*,\s*'(\w+)'/g)) set.add(m[1] ?? '');
    // A computed name would escape this check: refuse it.
    assert.doesNotMatch(
      text,
      /\[\s*'env'\s*,\s*'set(?:-secret)?'\s*,\s*[^'\s]/,
      `${file} sets a computed variable`,
    );
    for (const m of text.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)) visit(join(dirname(file), m[1] ?? ''));
  };
  for (const script of scripts) visit(join(root, script));
  return { hooks: [...scripts], set };
}

const main = stripComments(readFileSync(join(root, 'infra', 'main.bicep'), 'utf8'));
const declared = bicepParams(main);
const mapped = (
  JSON.parse(readFileSync(join(root, 'infra', 'main.parameters.json'), 'utf8')) as {
    parameters: Record<string, { value: unknown }>;
  }
).parameters;
/** `${VAR}` a parameter is mapped to, if it is mapped to exactly one. */
function variableOf(name: string): string | undefined {
  const value = mapped[name]?.value;
  return typeof value === 'string' ? /^\$\{(\w+)\}$/.exec(value)?.[1] : undefined;
}

void describe('azd parameters: nothing to prompt for, nothing rotated by accident', () => {
  void it('parses the parameters of main.bicep', () => {
    assert.ok(declared.length >= 15, `only ${declared.length} params parsed`);
    assert.ok(declared.some((p) => p.name === 'brokerKeys'));
  });

  void it('every parameter without a default is an azd built-in or generated by azd', () => {
    const problems: string[] = [];
    for (const p of declared.filter((d) => !d.hasDefault)) {
      const variable = variableOf(p.name);
      const metadata = azdMetadata(p.decorators);
      if (variable && variable in BUILT_INS) {
        if (variable === 'AZURE_LOCATION' && metadata?.type !== 'location') {
          problems.push(`${p.name}: mapped to AZURE_LOCATION without @metadata azd type 'location'`);
        }
        continue;
      }
      if (metadata?.type !== 'generate') {
        problems.push(
          `${p.name} has no default, is mapped to ${variable ? `\${${variable}}` : 'nothing'} (not an azd built-in) and is not generated by azd: a first 'azd up --no-prompt' stops here`,
        );
        continue;
      }
      if (p.type !== 'string') problems.push(`${p.name}: azd generates string parameters only`);
      const length = metadata.config?.length ?? 0;
      if (length < minLength(p.decorators)) {
        problems.push(
          `${p.name}: generated length ${length} is below its @minLength(${minLength(p.decorators)})`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });

  void it('the generated BROKER_KEYS is a key the broker accepts (base64url, >= 32 bytes)', () => {
    const p = declared.find((d) => d.name === 'brokerKeys');
    assert.ok(p);
    const config = azdMetadata(p.decorators)?.config;
    assert.ok(config, 'brokerKeys has no azd generate config');
    const alphabet = azdAlphabet(config);
    // Every character azd may draw must be base64url, or some generated keys would be refused at start-up.
    assert.deepEqual(
      [...alphabet].filter((c) => !/[A-Za-z0-9_-]/.test(c)),
      [],
      'azd may generate non-base64url characters',
    );
    const length = config.length ?? 0;
    const value = Array.from({ length }, (_, i) => alphabet[i % alphabet.length]).join('');
    const parsed = parseConfig({
      BROKER_KEYS: value,
      KEY_VAULT_URL: 'https://kv-test.vault.azure.net',
      AzureWebJobsStorage__blobServiceUri: 'https://sttest.blob.core.windows.net',
    });
    assert.equal(parsed.keys?.length, 1);
    // 62 symbols per character: at least 256 bits of entropy.
    assert.ok(length * Math.log2(alphabet.length) >= 256, 'generated key has less than 256 bits');
  });

  void it('no hook sets a variable that a built-in or generated parameter is mapped to', () => {
    const { hooks, set } = variablesHooksSet();
    assert.ok(hooks.length >= 2, `hooks found: ${hooks.join(', ')}`);
    const owned = declared
      .filter((d) => !d.hasDefault || azdMetadata(d.decorators)?.type === 'generate')
      .map((d) => variableOf(d.name))
      .filter((v): v is string => v !== undefined);
    assert.deepEqual(
      owned.filter((v) => set.has(v)),
      [],
      'a hook sets a variable azd resolves before hooks run (prompted on the first run, changed on the next)',
    );
  });
});
