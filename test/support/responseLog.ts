/**
 * Records every HTTP answer a test process receives — through the global `fetch` (which the harnesses use) or
 * added by hand for raw `node:http` requests — so a suite can assert at the end that no secret (a refresh token
 * above all) ever left the broker in a status line, a header or a body.
 */
import { SecretScanner } from './secrets.ts';
import type { TokenStore } from '../../shared/store/types.ts';

export class ResponseLog {
  readonly #entries: string[] = [];
  #restore: (() => void) | undefined;

  get count(): number {
    return this.#entries.length;
  }

  /** Wraps `globalThis.fetch` so every response is copied here (the caller still reads the original). */
  install(): void {
    const original = globalThis.fetch;
    const record = this.add.bind(this);
    globalThis.fetch = async (input, init) => {
      const res = await original(input, init);
      const url = input instanceof Request ? input.url : String(input);
      await record(new URL(url).pathname, res.status, res.headers, await res.clone().text());
      return res;
    };
    this.#restore = () => {
      globalThis.fetch = original;
    };
  }

  uninstall(): void {
    this.#restore?.();
    this.#restore = undefined;
  }

  add(
    label: string,
    status: number,
    headers: Headers | Record<string, unknown>,
    body: string,
  ): Promise<void> {
    const lines: string[] = [];
    if (headers instanceof Headers) headers.forEach((v, k) => lines.push(`${k}: ${v}`));
    else for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${String(v)}`);
    this.#entries.push(`${label} ${status}\n${lines.join('\n')}\n\n${body}`);
    return Promise.resolve();
  }

  text(): string {
    return this.#entries.join('\n----\n');
  }

  /** Asserts that none of the scanner's secrets appears in any recorded answer. */
  assertClean(scanner: SecretScanner): void {
    scanner.assertAbsent(this.text(), `HTTP responses (${this.count} recorded)`);
  }
}

/** Adds every refresh token (and, optionally, access token) the store currently holds to `scanner`. */
export async function addStoredTokens(
  store: TokenStore,
  scanner: SecretScanner,
  what: { accessTokens?: boolean } = {},
): Promise<number> {
  let n = 0;
  for (const meta of await store.listMetadata()) {
    const record = await store.get(meta.connection);
    const rt = record?.tokens?.refreshToken;
    if (rt) {
      scanner.add(`${meta.connection} refresh token`, rt);
      n++;
    }
    if (what.accessTokens)
      scanner.add(`${meta.connection} access token`, record?.tokens?.primary?.accessToken);
  }
  return n;
}

/** A scanner holding only refresh tokens: what must never appear in an HTTP answer. */
export async function refreshTokenScanner(
  store: TokenStore,
  seen: readonly (string | undefined)[] = [],
): Promise<{ scanner: SecretScanner; count: number }> {
  const scanner = new SecretScanner();
  let count = await addStoredTokens(store, scanner);
  for (const rt of seen) {
    if (rt) {
      scanner.add('earlier refresh token', rt);
      count++;
    }
  }
  return { scanner, count };
}
