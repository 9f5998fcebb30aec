/**
 * Secret scanning for tests: collect every secret value a test sees (tokens, codes, verifiers, client
 * secrets, keys, links — superseded ones too) and assert that no piece of any of them appears in captured text.
 *
 * A log line may carry a secret cut short (log values are truncated) or split, so a whole-value search is not
 * enough: every 16-character window of every secret is indexed, and every 16-character window of the text is
 * looked up. Any shared run of 16 characters is a finding. 16 characters of base64url carry 96 bits, so an
 * accidental match between random secrets and ordinary log text does not happen.
 */
import assert from 'node:assert/strict';

/** The length of the pieces searched for (issue: "any 16-character piece of every token"). */
export const PIECE = 16;

export class SecretScanner {
  /** piece → label of a secret it belongs to. */
  readonly #pieces = new Map<string, string>();
  /** Secrets shorter than a piece (8..15 characters) are searched for whole. */
  readonly #short = new Map<string, string>();
  readonly #labels = new Set<string>();
  /** Live sources (e.g. everything the demo IdP ever issued), read again before every search. */
  readonly #sources: { read: () => readonly { kind: string; value: string }[]; taken: number }[] = [];

  /** Also searches for every value `read` returns now or later (it is re-read before each search). */
  watch(read: () => readonly { kind: string; value: string }[]): void {
    this.#sources.push({ read, taken: 0 });
  }

  /** Remembers a secret under a label (the label, never the value, is reported). Values under 8 characters are
   * ignored because they would match by accident. */
  add(label: string, value: string | undefined | null): void {
    if (typeof value !== 'string' || value.length < 8) return;
    this.#labels.add(label);
    this.#index(value, label);
    // Values also travel URL-encoded in query strings and form bodies.
    const encoded = encodeURIComponent(value);
    if (encoded !== value) this.#index(encoded, `${label} (url-encoded)`);
  }

  #index(value: string, label: string): void {
    if (value.length < PIECE) {
      this.#short.set(value, label);
      return;
    }
    // A JWT's header is public metadata (alg, kid, typ), shared by every token of one issuer: not a secret.
    const start = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(value)
      ? value.indexOf('.') + 1
      : 0;
    for (let i = start; i + PIECE <= value.length; i++) {
      const piece = value.slice(i, i + PIECE);
      if (!this.#pieces.has(piece)) this.#pieces.set(piece, label);
    }
  }

  /** How many distinct secrets (labels) are being looked for. */
  get size(): number {
    return this.#labels.size;
  }

  /** Labels of the secrets a piece of which is found in `text`. */
  findIn(text: string): string[] {
    for (const source of this.#sources) {
      const all = source.read();
      for (const { kind, value } of all.slice(source.taken)) this.add(`IdP-issued ${kind}`, value);
      source.taken = all.length;
    }
    const found = new Set<string>();
    for (let i = 0; i + PIECE <= text.length; i++) {
      const label = this.#pieces.get(text.slice(i, i + PIECE));
      if (label !== undefined) found.add(label);
    }
    for (const [value, label] of this.#short) if (text.includes(value)) found.add(label);
    return [...found];
  }

  assertAbsent(text: string, where: string): void {
    const found = this.findIn(text);
    assert.deepEqual(found, [], `secrets leaked into ${where}: ${found.join(', ')}`);
  }
}
