/**
 * A ProviderClient whose token endpoint answers are scripted per call. Used only by broker unit tests to pin
 * down refresh rules exactly; the real protocol is exercised against the demo IdP in integration tests.
 */
import { BrokerError } from '../../shared/errors.ts';
import { classifyFailure, type FailureInput } from '../../shared/oauth/classify.ts';
import { ProviderFailure, type ProviderClient, type TokenResult } from '../../shared/oauth/provider.ts';

export type Answer =
  | { ok: Partial<TokenResult> & { ttlSeconds?: number; noRefreshToken?: boolean } }
  | { fail: FailureInput }
  | { delayMs: number; then: Answer };

export class ScriptedProvider implements ProviderClient {
  readonly name = 'microsoft';
  readonly kind = 'microsoft' as const;
  readonly defaultScopes = ['https://graph.microsoft.com/Mail.Send'];
  readonly calls: { refreshToken: string; scopes: readonly string[] }[] = [];
  readonly queue: Answer[] = [];
  #n = 0;
  loginScopes(scopes: readonly string[]): string[] {
    return ['openid', 'profile', 'offline_access', ...scopes];
  }

  authorizationUrl(params: { state: string }): URL {
    const url = new URL('https://idp.test/authorize');
    url.searchParams.set('state', params.state);
    return url;
  }

  redeemCode(): Promise<TokenResult> {
    return Promise.reject(new BrokerError('provider_error', 'not scripted'));
  }

  async refresh(refreshToken: string, scopes: readonly string[]): Promise<TokenResult> {
    this.calls.push({ refreshToken, scopes });
    let answer: Answer = this.queue.shift() ?? { ok: {} };
    while ('delayMs' in answer) {
      const { delayMs, then } = answer;
      await new Promise((r) => setTimeout(r, delayMs));
      answer = then;
    }
    if ('fail' in answer) throw new ProviderFailure(classifyFailure(answer.fail), 'refresh');
    const n = ++this.#n;
    const result: TokenResult = {
      accessToken: answer.ok.accessToken ?? `at-${n}-${'x'.repeat(24)}`,
      tokenType: 'Bearer',
      expiresInSeconds: answer.ok.ttlSeconds ?? 3600,
      scope: answer.ok.scope ?? scopes.join(' '),
    };
    if (!answer.ok.noRefreshToken)
      result.refreshToken = answer.ok.refreshToken ?? `rt-${n}-${'y'.repeat(24)}`;
    if (answer.ok.refreshInSeconds !== undefined) result.refreshInSeconds = answer.ok.refreshInSeconds;
    return result;
  }
}
