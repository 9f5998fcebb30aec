/**
 * @module store
 * Builds the configured {@link TokenStore}: Key Vault when `KEY_VAULT_URL` is set, else the embedded file store.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import type { Config } from '../config.ts';
import { BrokerError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { createFileStore } from './fileStore.ts';
import { createKeyVaultStore, type StoreRetryPolicy } from './keyVaultStore.ts';
import type { TokenStore } from './types.ts';
import type { VaultPacerOptions } from './vaultPacer.ts';

/**
 * `Config['store']` plus two TEST-ONLY Key Vault settings for talking to the loopback Key Vault double from
 * another process; both are refused unless the vault URL is loopback:
 * - `disableChallengeResourceVerification` (env `KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION`): the
 *   double's challenge names `vault.azure.net`, which is no parent domain of 127.0.0.1.
 * - `staticBearerToken` (env `KEY_VAULT_TEST_BEARER_TOKEN`): sent instead of an identity token.
 */
export type StoreConfig =
  | Extract<Config['store'], { kind: 'file' }>
  | (Extract<Config['store'], { kind: 'keyvault' }> & {
      disableChallengeResourceVerification?: boolean;
      staticBearerToken?: string;
    });

export interface TokenStoreOptions {
  logger?: Logger;
  /** Key Vault: replaces the identity credential. */
  credential?: TokenCredential;
  /** Key Vault: extra SecretClient options (tests: `tlsOptions.ca`). */
  secretClientOptions?: SecretClientOptions;
  retry?: Partial<StoreRetryPolicy>;
  timeoutMs?: number;
  pollIntervalMs?: number;
  deleteSettleMs?: number;
  /** Key Vault: the process's share of the vault budgets (benchmarks scale them with the double's). */
  pacer?: VaultPacerOptions;
}

export function createTokenStore(config: StoreConfig, opts: TokenStoreOptions = {}): TokenStore {
  if (config.kind === 'file') {
    return createFileStore({
      dataDir: config.dataDir,
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
  }
  const testOnly =
    config.disableChallengeResourceVerification === true || config.staticBearerToken !== undefined;
  if (testOnly && !isLoopbackUrl(config.vaultUrl)) {
    throw new BrokerError('config_error', 'Test-only Key Vault settings are set for a non-loopback vault.', {
      detail:
        'KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION / KEY_VAULT_TEST_BEARER_TOKEN need a loopback URL',
    });
  }
  const credential =
    opts.credential ??
    (config.staticBearerToken ? staticTokenCredential(config.staticBearerToken) : undefined);
  return createKeyVaultStore({
    vaultUrl: config.vaultUrl,
    ...(config.clientId ? { clientId: config.clientId } : {}),
    ...(credential ? { credential } : {}),
    ...(opts.secretClientOptions ? { secretClientOptions: opts.secretClientOptions } : {}),
    ...(config.disableChallengeResourceVerification ? { disableChallengeResourceVerification: true } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
    ...(opts.deleteSettleMs === undefined ? {} : { deleteSettleMs: opts.deleteSettleMs }),
    ...(opts.pacer ? { pacer: opts.pacer } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
}

/** A credential that always returns `token` (valid for an hour from each call). Loopback tests only. */
export function staticTokenCredential(token: string): TokenCredential {
  return {
    getToken: (): Promise<AccessToken> =>
      Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3600_000 }),
  };
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}
