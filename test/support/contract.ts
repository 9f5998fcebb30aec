/**
 * The contract check: every answer a suite receives from the broker's `/api` routes is matched to an operation
 * of the OpenAPI document (path template, method, status) and its body validated against the documented schema
 * with Ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1). An undocumented status or a body that does not fit
 * is a failure, so the document cannot drift from what the broker really answers.
 */
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { openApiDocument } from '../../shared/openapi/document.ts';

interface Seen {
  method: string;
  path: string;
  status: number;
  contentType: string;
  body: string;
}

type Json = Record<string, unknown>;

export interface ContractCheck {
  /** Records one answer (the fetch wrapper does this for every call under `/api`). */
  record(seen: Seen): void;
  /** How many answers were checked, per operation id. */
  readonly counts: Map<string, number>;
  /** Validates everything recorded; throws listing every mismatch. */
  assertAllValid(): void;
  uninstall(): void;
}

function compile() {
  const doc = openApiDocument() as { paths: Record<string, Record<string, Json>>; components: Json };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('date-time', true).addFormat('uri', true).addFormat('email', true);
  ajv.addSchema({ $id: 'https://token-broker.invalid/openapi.json', components: doc.components });
  const routes = Object.entries(doc.paths).map(([template, ops]) => ({
    regex: new RegExp(`^/api${template.replace(/\{[^}]+\}/g, '[^/]+').replace(/\./g, '\\.')}$`),
    template,
    ops,
  }));
  const rewrite = (schema: unknown): unknown =>
    JSON.parse(
      JSON.stringify(schema).replaceAll(
        '"#/components/',
        '"https://token-broker.invalid/openapi.json#/components/',
      ),
    );
  return { ajv, routes, rewrite };
}

/** Wraps `globalThis.fetch` so every `/api` answer to this test process is checked against the document. */
export function installContractCheck(): ContractCheck {
  const { ajv, routes, rewrite } = compile();
  const seen: Seen[] = [];
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const res = await original(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname.startsWith('/api/')) {
      seen.push({
        method: (init?.method ?? (input instanceof Request ? input.method : 'GET')).toLowerCase(),
        path: url.pathname,
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        body: await res.clone().text(),
      });
    }
    return res;
  };
  const counts = new Map<string, number>();
  const validators = new Map<string, ReturnType<typeof ajv.compile>>();
  const validatorFor = (schema: unknown) => {
    const key = JSON.stringify(schema);
    let v = validators.get(key);
    if (!v) validators.set(key, (v = ajv.compile(rewrite(schema) as Json)));
    return v;
  };
  return {
    counts,
    record: (s) => seen.push(s),
    uninstall() {
      globalThis.fetch = original;
    },
    assertAllValid() {
      const failures: string[] = [];
      for (const s of seen) {
        const route = routes.find((r) => r.regex.test(s.path));
        const op = route?.ops[s.method] as
          { operationId: string; responses: Record<string, Json> } | undefined;
        if (!route || !op) {
          // The host's own 404 for an unknown route or method has no body; it is not part of the API. A value
          // the app refuses in a templated segment (`…/{action}` = `frobnicate`) is an invalid request, not an
          // operation: it must still be a well-formed invalid_request problem.
          if (s.status === 404 && s.body === '') continue;
          if (s.status === 400 && isProblem(s.body, 'invalid_request')) continue;
          failures.push(`${s.method.toUpperCase()} ${s.path} → ${s.status}: no such operation`);
          continue;
        }
        counts.set(op.operationId, (counts.get(op.operationId) ?? 0) + 1);
        const response = op.responses[String(s.status)] as
          { content?: Record<string, { schema: unknown }> } | undefined;
        const where = `${op.operationId} ${s.status}`;
        if (!response) {
          failures.push(`${where}: status not documented`);
          continue;
        }
        // The host itself answers a missing or wrong function key with an empty 401 (documented as such).
        if (s.status === 401 && s.body === '') continue;
        if (!response.content) {
          if (s.body !== '') failures.push(`${where}: documented without a body, got one`);
          continue;
        }
        const media = s.contentType.split(';')[0]?.trim() ?? '';
        const entry = response.content[media];
        if (!entry) {
          failures.push(`${where}: content type ${media || '(none)'} not documented`);
          continue;
        }
        if (media === 'text/html') continue;
        const validate = validatorFor(entry.schema);
        if (!validate(JSON.parse(s.body))) {
          const errors = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
          failures.push(`${where}: ${errors.join('; ')}`);
        }
      }
      assert.deepEqual(failures, [], `answers that do not fit the OpenAPI document:\n${failures.join('\n')}`);
    },
  };
}

function isProblem(body: string, code: string): boolean {
  try {
    return (JSON.parse(body) as { code?: unknown }).code === code;
  } catch {
    return false;
  }
}
