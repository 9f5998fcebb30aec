/**
 * @module broker/usedStates
 * Single-use login state values, kept for the login cookie's lifetime. Per instance: a replay to another
 * instance still fails at the provider, which redeems a code once.
 */
import { BrokerError } from '../errors.ts';

export const USED_STATE_LIMIT = 10_000;

export class UsedStates {
  readonly #until = new Map<string, number>();
  readonly #limit: number;

  constructor(limit = USED_STATE_LIMIT) {
    this.#limit = limit;
  }

  /** Marks `state` used until `exp`; throws when it was used before. Expired entries are dropped once full. */
  consume(state: string, exp: number, now: number): void {
    if (this.#until.has(state)) {
      throw new BrokerError(
        'invalid_state',
        'This sign-in response was already used. Open the connect link again.',
        {
          detail: 'state replayed',
        },
      );
    }
    if (this.#until.size >= this.#limit) {
      for (const [k, until] of this.#until) if (until <= now) this.#until.delete(k);
    }
    this.#until.set(state, exp);
  }

  get size(): number {
    return this.#until.size;
  }
}
