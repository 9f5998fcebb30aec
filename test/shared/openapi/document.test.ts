import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../../shared/errors.ts';
import { openApiDocument } from '../../../shared/openapi/document.ts';
import { BROKER_VERSION } from '../../../shared/version.ts';
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

describe('OpenAPI document: operations in detail', () => {
  type Op = {
    operationId: string;
    tags: string[];
    parameters?: {
      name: string;
      in: string;
      required: boolean;
      description?: string;
      schema: Record<string, unknown>;
    }[];
    requestBody?: { required: boolean; content: Record<string, { schema: unknown }> };
    responses: Record<
      string,
      { description: string; headers?: unknown; content?: Record<string, { schema: unknown }> }
    >;
    security: unknown;
  };
  const op = (path: string, method: string) =>
    (doc.paths[path] as unknown as Record<string, Op>)[method] as Op;
  const problem = (codes: string[], status: number) => ({
    allOf: [
      { $ref: '#/components/schemas/Problem' },
      { type: 'object', properties: { code: { enum: codes }, status: { const: status } } },
    ],
  });

  it('tags each operation by who calls it', () => {
    assert.deepEqual(op('/connections/{connection}/token', 'get').tags, ['tokens']);
    assert.deepEqual(op('/manage/connections', 'get').tags, ['manage']);
    assert.deepEqual(op('/connect/{connection}', 'get').tags, ['connect']);
    assert.deepEqual(op('/callback', 'get').tags, ['connect']);
    assert.deepEqual(op('/health', 'get').tags, ['meta']);
  });

  it('asks for the function key, or key and Entra bearer with the role, and nothing on public routes', () => {
    assert.deepEqual(op('/connections/{connection}/token', 'get').security, [
      { functionKey: [] },
      { functionKey: [], entraBearer: ['Tokens.Read'] },
    ]);
    assert.deepEqual(op('/manage/connections', 'get').security, [
      { functionKey: [] },
      { functionKey: [], entraBearer: ['Connections.Manage'] },
    ]);
    for (const [path, method] of [
      ['/health', 'get'],
      ['/connect/{connection}', 'post'],
      ['/callback', 'get'],
    ] as const)
      assert.deepEqual(op(path, method).security, [], path);
  });

  it('describes the path and query parameters with the schemas the functions validate with', () => {
    const token = op('/connections/{connection}/token', 'get');
    const [connection, scope] = token.parameters ?? [];
    assert.equal(token.parameters?.length, 2);
    assert.deepEqual(
      { ...connection, schema: undefined },
      {
        name: 'connection',
        in: 'path',
        required: true,
        description: 'The connection name: the parameter name callers use',
        schema: undefined,
      },
    );
    assert.equal(connection?.schema.type, 'string');
    assert.equal(connection?.schema.pattern, '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$');
    assert.equal(connection?.schema.$schema, undefined);
    assert.equal(scope?.in, 'query');
    assert.equal(scope?.required, false);
    assert.equal(scope?.schema.maxLength, 2048);
    assert.equal(scope?.schema.$schema, undefined);
    const link = op('/connect/{connection}', 'get').parameters?.find((p) => p.name === 'link');
    assert.equal(link?.required, true);
    assert.deepEqual(op('/console/assets/{name}', 'get').parameters, [
      { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
    ]);
    assert.equal(op('/health', 'get').parameters, undefined);
  });

  it('describes request bodies by component, JSON unless the form says otherwise', () => {
    assert.deepEqual(op('/manage/connections/{connection}', 'put').requestBody, {
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ConnectionSettings' } } },
    });
    assert.deepEqual(op('/connect/{connection}', 'post').requestBody, {
      required: true,
      content: {
        'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/ConnectConsentForm' } },
      },
    });
    assert.equal(op('/manage/connections/{connection}/link', 'post').requestBody?.required, false);
    assert.equal(op('/health', 'get').requestBody, undefined);
  });

  it('describes each kind of success answer', () => {
    const put = op('/manage/connections/{connection}', 'put').responses;
    const json = (ref: string) => ({
      'application/json': { schema: { $ref: `#/components/schemas/${ref}` } },
    });
    assert.deepEqual(put['200'], { description: 'OK', content: json('ConnectionView') });
    assert.deepEqual(put['201'], { description: 'Created', content: json('ConnectionView') });
    assert.deepEqual(op('/manage/connections/{connection}', 'delete').responses['204'], {
      description: 'No content',
    });
    assert.deepEqual(op('/connect/{connection}', 'post').responses['303']?.headers, {
      Location: { schema: { type: 'string' } },
    });
    assert.deepEqual(Object.keys(op('/console/assets/{name}', 'get').responses['200']?.content ?? {}), [
      'text/javascript',
      'text/css',
    ]);
    assert.deepEqual(op('/console/assets/{name}', 'get').responses['304'], { description: 'No content' });
    assert.deepEqual(op('/console', 'get').responses['200']?.content, {
      'text/html': { schema: { type: 'string' } },
    });
  });

  it('groups problem codes by status, sorted, with Retry-After on 503 and an error page on browser routes', () => {
    const token = op('/connections/{connection}/token', 'get').responses;
    const statuses = Object.keys(token);
    assert.deepEqual(
      statuses,
      [...statuses].sort((a, b) => Number(a) - Number(b)),
    );
    assert.deepEqual(token['403']?.content, {
      'application/problem+json': {
        schema: problem(['forbidden', 'identity_mismatch', 'insufficient_scope', 'scope_not_granted'], 403),
      },
    });
    assert.equal(
      token['403']?.description,
      'Problem: forbidden, identity_mismatch, insufficient_scope, scope_not_granted',
    );
    assert.deepEqual(token['503']?.headers, { 'Retry-After': { schema: { type: 'integer' } } });
    assert.equal(token['409']?.headers, undefined);
    const page = op('/connect/{connection}', 'get').responses;
    assert.deepEqual(page['400']?.content, {
      'application/problem+json': { schema: problem(['invalid_request'], 400) },
      'text/html': { schema: { type: 'string' } },
    });
    assert.deepEqual(Object.keys(op('/callback', 'get').responses['502']?.content ?? {}), [
      'application/problem+json',
      'text/html',
    ]);
  });

  it('says a keyed route’s 401 comes from the host without a body, and in Entra mode as a problem', () => {
    const r = op('/manage/connections', 'get').responses['401'];
    assert.equal(
      r?.description,
      'The function key is missing or wrong: the host answers without a body. Entra mode: Problem: invalid_token, unauthorized',
    );
    assert.deepEqual(r?.content, {
      'application/problem+json': { schema: problem(['invalid_token', 'unauthorized'], 401) },
    });
    assert.equal(op('/connect/{connection}', 'get').responses['401'], undefined);
  });

  it('holds the component schemas without their own $schema or $id, and is built once', () => {
    const schemas = doc.components.schemas as Record<string, Record<string, unknown>>;
    for (const name of [
      'ConnectionSettings',
      'LinkRequest',
      'ImportRequest',
      'ConnectConsentForm',
      'ConnectionView',
      'AccessToken',
      'Problem',
    ]) {
      assert.ok(schemas[name], name);
      assert.equal(schemas[name]?.$schema, undefined, name);
      assert.equal(schemas[name]?.$id, undefined, name);
    }
    assert.equal(openApiDocument(), doc);
    assert.ok(Object.isFrozen(doc));
  });
});

describe('OpenAPI document: the reviewed text', () => {
  // docs/openapi.json is the reviewed copy the typed client and the Redocly lint are built from. Its operations
  // and its frame must be what the broker serves; the component schemas come from the zod schemas and are
  // checked by the staleness test above.
  const committed = JSON.parse(readFileSync(join(REPO_ROOT, 'docs', 'openapi.json'), 'utf8')) as Record<
    string,
    unknown
  > & { components: { schemas: Record<string, unknown>; securitySchemes: unknown } };
  const served = JSON.parse(JSON.stringify(doc)) as typeof committed;

  it('serves every operation as reviewed: parameters, bodies, answers, problem codes, security, tags', () => {
    assert.deepEqual(served.paths, committed.paths);
  });

  it('serves the reviewed frame: title, licence, server, tags, security schemes, the list of schemas', () => {
    assert.deepEqual({ ...(served.info as object), version: 'dev' }, committed.info);
    assert.equal((served.info as { version: string }).version, BROKER_VERSION);
    assert.deepEqual(served.servers, committed.servers);
    assert.deepEqual(served.tags, committed.tags);
    assert.deepEqual(served.components.securitySchemes, committed.components.securitySchemes);
    assert.deepEqual(
      Object.keys(served.components.schemas).sort(),
      Object.keys(committed.components.schemas).sort(),
    );
    assert.deepEqual(served.components.schemas.OpenApiDocument, {
      type: 'object',
      description: 'An OpenAPI 3.1 document',
    });
  });
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
