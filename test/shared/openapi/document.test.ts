import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../../shared/errors.ts';
import { openApiDocument } from '../../../shared/openapi/document.ts';
import { generated } from '../../../tools/openapi.ts';
import { REPO_ROOT } from '../../support/devhost.ts';
import { installContractCheck } from '../../support/contract.ts';

type Ops = Record<string, { operationId: string; responses: Record<string, unknown>; security?: unknown }>;
const doc = openApiDocument() as {
  paths: Record<string, Ops>;
  components: { schemas: Record<string, unknown> };
};

/** Every `app.http(...)` registration in functions/*.ts: its methods and route template. */
function registeredRoutes(): { methods: string[]; route: string; authLevel: string }[] {
  const dir = join(REPO_ROOT, 'functions');
  const out: { methods: string[]; route: string; authLevel: string }[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/app\.http\(\s*'[^']+',\s*\{([\s\S]*?)\}\s*\)/g)) {
      const body = m[1] ?? '';
      const methods = [...(/methods:\s*\[([^\]]*)\]/.exec(body)?.[1] ?? '').matchAll(/'(\w+)'/g)].map((x) =>
        (x[1] ?? '').toLowerCase(),
      );
      const route = /route:\s*'([^']*)'/.exec(body)?.[1] ?? '';
      const authLevel = /authLevel:\s*'(\w+)'/.exec(body)?.[1] ?? '';
      out.push({ methods, route, authLevel });
    }
  }
  return out;
}

const templateRegex = (route: string) =>
  new RegExp(`^/${route.replace(/\{[^}]+\}/g, '[^/]+').replace(/\./g, '\\.')}$`);

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 with both security schemes', () => {
    assert.equal((doc as unknown as { openapi: string }).openapi, '3.1.0');
    const schemes = (doc.components as unknown as { securitySchemes: Record<string, { type: string }> })
      .securitySchemes;
    assert.deepEqual(Object.keys(schemes).sort(), ['entraBearer', 'functionKey']);
  });

  it('describes every registered HTTP route and method, and nothing else', () => {
    const routes = registeredRoutes();
    assert.ok(routes.length >= 8, `found ${routes.length} registrations`);
    for (const r of routes) {
      const re = templateRegex(r.route);
      for (const method of r.methods) {
        const hit = Object.entries(doc.paths).some(([path, ops]) => re.test(path) && ops[method]);
        assert.ok(hit, `${method.toUpperCase()} /${r.route} is not in the document`);
      }
    }
    for (const [path, ops] of Object.entries(doc.paths))
      for (const method of Object.keys(ops)) {
        const hit = routes.some((r) => templateRegex(r.route).test(path) && r.methods.includes(method));
        assert.ok(hit, `${method.toUpperCase()} ${path} is documented but not registered`);
      }
  });

  it('keyed routes require the function key; anonymous routes require nothing', () => {
    for (const r of registeredRoutes()) {
      const re = templateRegex(r.route);
      for (const [path, ops] of Object.entries(doc.paths)) {
        if (!re.test(path)) continue;
        for (const method of r.methods) {
          const security = ops[method]?.security as Record<string, unknown>[] | undefined;
          if (r.authLevel === 'anonymous') assert.deepEqual(security, [], `${path} ${method}`);
          else
            assert.ok(
              security?.every((s) => 'functionKey' in s),
              `${path} ${method}`,
            );
        }
      }
    }
  });

  it('documents every error code the broker can answer', () => {
    const text = JSON.stringify(doc.paths);
    const missing = Object.keys(ERROR_CODES).filter((code) => !text.includes(`"${code}"`));
    assert.deepEqual(missing, []);
  });

  // Under Stryker (STRYKER_NAMESPACE set) the sources are instrumented copies, so the generated text cannot be
  // compared with the committed files; this check guards the committed files, not a mutant.
  it(
    'the committed docs/openapi.json and the client types are up to date (`npm run openapi`)',
    {
      skip: process.env.STRYKER_NAMESPACE !== undefined,
    },
    async () => {
      for (const [path, text] of Object.entries(await generated()))
        assert.equal(readFileSync(path, 'utf8'), text, `${path} is stale: run npm run openapi`);
    },
  );
});

describe('contract check', () => {
  const view = {
    connection: 'a',
    provider: 'microsoft',
    status: 'active',
    scopes: [],
    createdAt: '2026-11-29T00:00:00.000Z',
    updatedAt: '2026-11-29T00:00:00.000Z',
    failures: 0,
  };
  const answer = (status: number, body: unknown, path = '/api/manage/connections/a') => ({
    method: 'get',
    path,
    status,
    contentType: status < 300 ? 'application/json; charset=utf-8' : 'application/problem+json',
    body: JSON.stringify(body),
  });

  it('accepts an answer that fits', () => {
    const check = installContractCheck();
    check.uninstall();
    check.record(answer(200, view));
    check.assertAllValid();
  });

  it('refuses an undocumented field, an undocumented status and a code the route does not answer', () => {
    for (const bad of [
      answer(200, { ...view, refreshToken: 'x' }),
      answer(418, {}),
      answer(409, { type: 'x', title: 'Conflict', status: 409, detail: 'd', code: 'secret_disabled' }),
      answer(200, { ...view, status: 'sleeping' }),
    ]) {
      const check = installContractCheck();
      check.uninstall();
      check.record(bad);
      assert.throws(() => check.assertAllValid(), /do not fit the OpenAPI document/, JSON.stringify(bad));
    }
  });
});
