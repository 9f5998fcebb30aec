/**
 * Secret scanning for tests: collect every secret value a test sees (tokens, codes, verifiers, client
 * secrets, keys, links) and assert that none of them appears in captured log text.
 */
import assert from 'node:assert/strict';

export class SecretScanner {
  readonly #values = new Map<string, string>();

  /** Remembers a secret under a label (the label, never the value, is reported). Short values are ignored
   * because they would match by accident. */
  add(label: string, value: string | undefined | null): void {
    if (typeof value !== 'string' || value.length < 8) return;
    this.#values.set(value, label);
    // Values also travel URL-encoded in query strings.
    const encoded = encodeURIComponent(value);
    if (encoded !== value) this.#values.set(encoded, `${label} (url-encoded)`);
  }

  get size(): number {
    return this.#values.size;
  }

  /** Labels of the secrets found in `text`. */
  findIn(text: string): string[] {
    const found: string[] = [];
    for (const [value, label] of this.#values) if (text.includes(value)) found.push(label);
    return found;
  }

  assertAbsent(text: string, where: string): void {
    const found = this.findIn(text);
    assert.deepEqual(found, [], `secrets leaked into ${where}: ${found.join(', ')}`);
  }
}
