/**
 * @module configKit
 * Small pieces shared by the configuration parsers (config.ts and providerConfig.ts): zod field types for
 * environment values, the problem list a parse collects, and the unresolved Key Vault reference check.
 */
import { z } from 'zod';

export type Env = Record<string, string | undefined>;
/** What a parse collects instead of throwing at the first mistake: every bad setting is named at once. */
export type Problems = { variable: string; reason: string }[];

export const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
export const httpsOrLocalUrl = z.url({ protocol: /^https?$/ }).transform((s) => s.replace(/\/+$/, ''));
export const nonEmpty = z.string().trim().min(1);
export const bool = z
  .enum(['true', 'false', '1', '0', ''])
  .transform((v) => v === 'true' || v === '1')
  .default(false);

export const KEY_VAULT_REFERENCE_UNRESOLVED =
  'Key Vault reference not resolved: check the identity has Key Vault Secrets User/Officer and the secret exists';

/**
 * App Service leaves a Key Vault reference (`@Microsoft.KeyVault(SecretUri=…)` or `(VaultName=…;SecretName=…)`)
 * as literal text when it cannot resolve it; any setting can hold one, so every secret-bearing value is checked,
 * including the settings named by generic providers' `clientSecretSetting`.
 */
export function isUnresolvedKeyVaultReference(value: string): boolean {
  return /^\s*@Microsoft\.KeyVault\s*\(/i.test(value);
}

export function splitScopes(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s.length > 0);
}

export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}
