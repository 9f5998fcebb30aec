/**
 * @module providerConfig
 * The provider part of the configuration: the Microsoft provider's client credential and the generic OAuth 2.0 /
 * OpenID providers of `BROKER_PROVIDERS` (with presets). Parsed by config.ts, once, with everything else.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { PRESET_NAMES, type PresetName, presetFor } from './oauth/presets.ts';
import {
  type Env,
  isUnresolvedKeyVaultReference,
  KEY_VAULT_REFERENCE_UNRESOLVED,
  nonEmpty,
  type Problems,
} from './configKit.ts';

const genericProviderSchema = z
  .object({
    kind: z.literal('oauth2'),
    /** Documented defaults for a known provider (shared/oauth/presets.ts); settings given here win. */
    preset: z.enum(PRESET_NAMES).optional(),
    /** Optional with `issuer` (taken from its discovery document); explicit values win over the document. */
    authorizationUrl: z.url().optional(),
    tokenUrl: z.url().optional(),
    issuer: z.url().optional(),
    jwksUrl: z.url().optional(),
    clientId: nonEmpty,
    /** Name of the environment variable that holds the client secret (keeps this JSON non-secret). */
    clientSecretSetting: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    clientAuthMethod: z
      .enum(['client_secret_post', 'client_secret_basic', 'none'])
      .default('client_secret_post'),
    defaultScopes: z.array(nonEmpty).optional(),
    extraAuthorizeParams: z.record(z.string(), z.string()).optional(),
    extraTokenParams: z.record(z.string(), z.string()).default({}),
    usePkce: z.boolean().default(true),
    /** Access-token lifetime assumed when a token response has no `expires_in` (default 600 s). */
    defaultExpiresInSeconds: z.number().int().min(30).max(86_400).optional(),
    /** ID-token algorithms to accept instead of what discovery advertises. */
    idTokenSigningAlgs: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .optional(),
  })
  .strict();

export type ClientCredential =
  | { kind: 'secret'; secret: string; method: 'client_secret_post' | 'client_secret_basic' }
  | { kind: 'certificate'; privateKeyPem: string; certificatePem: string }
  | { kind: 'managed_identity'; clientId: string; audience: string }
  | { kind: 'none' };

export interface MicrosoftProviderConfig {
  kind: 'microsoft';
  name: 'microsoft';
  clientId: string;
  tenant: string;
  authorityHost: string;
  credential: ClientCredential;
  defaultScopes: string[];
}

export interface GenericProviderConfig {
  kind: 'oauth2';
  name: string;
  preset?: PresetName;
  /** Absent only when `issuer` is set: then they come from its discovery document. */
  authorizationUrl?: string;
  tokenUrl?: string;
  defaultExpiresInSeconds?: number;
  idTokenSigningAlgs?: string[];
  issuer?: string;
  jwksUrl?: string;
  clientId: string;
  credential: ClientCredential;
  defaultScopes: string[];
  extraAuthorizeParams: Record<string, string>;
  extraTokenParams: Record<string, string>;
  usePkce: boolean;
}

export type ProviderConfig = MicrosoftProviderConfig | GenericProviderConfig;

/** The settings the Microsoft provider's credential is chosen from. */
export interface MicrosoftCredentialEnv {
  MICROSOFT_CREDENTIAL: 'auto' | 'secret' | 'certificate' | 'managed_identity' | 'none';
  MICROSOFT_CLIENT_SECRET?: string | undefined;
  MICROSOFT_CLIENT_CERTIFICATE?: string | undefined;
  MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID?: string | undefined;
  AZURE_CLIENT_ID?: string | undefined;
  MICROSOFT_AUTHORITY_HOST: string;
}

export function microsoftCredential(e: MicrosoftCredentialEnv, problems: Problems): ClientCredential {
  const kind =
    e.MICROSOFT_CREDENTIAL !== 'auto'
      ? e.MICROSOFT_CREDENTIAL
      : e.MICROSOFT_CLIENT_CERTIFICATE
        ? 'certificate'
        : e.MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID
          ? 'managed_identity'
          : e.MICROSOFT_CLIENT_SECRET
            ? 'secret'
            : 'none';
  switch (kind) {
    case 'secret':
      if (!e.MICROSOFT_CLIENT_SECRET) {
        problems.push({
          variable: 'MICROSOFT_CLIENT_SECRET',
          reason: 'required when MICROSOFT_CREDENTIAL=secret',
        });
        return { kind: 'none' };
      }
      return { kind: 'secret', secret: e.MICROSOFT_CLIENT_SECRET, method: 'client_secret_post' };
    case 'certificate': {
      const pem = e.MICROSOFT_CLIENT_CERTIFICATE ?? '';
      const keyMatch =
        /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(pem);
      const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
      if (!keyMatch || !certMatch) {
        problems.push({
          variable: 'MICROSOFT_CLIENT_CERTIFICATE',
          reason: 'must be a PEM bundle with a private key and its certificate',
        });
        return { kind: 'none' };
      }
      const mismatch = certificateProblem(keyMatch[0], certMatch[0]);
      if (mismatch) {
        problems.push({ variable: 'MICROSOFT_CLIENT_CERTIFICATE', reason: mismatch });
        return { kind: 'none' };
      }
      return { kind: 'certificate', privateKeyPem: keyMatch[0], certificatePem: certMatch[0] };
    }
    case 'managed_identity': {
      const clientId = e.MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID ?? e.AZURE_CLIENT_ID;
      if (!clientId) {
        problems.push({
          variable: 'MICROSOFT_FEDERATED_IDENTITY_CLIENT_ID',
          reason: 'required when MICROSOFT_CREDENTIAL=managed_identity',
        });
        return { kind: 'none' };
      }
      return { kind: 'managed_identity', clientId, audience: fedAudience(e.MICROSOFT_AUTHORITY_HOST) };
    }
    default:
      return { kind: 'none' };
  }
}

function fedAudience(authorityHost: string): string {
  if (authorityHost.endsWith('.us')) return 'api://AzureADTokenExchangeUSGov';
  if (authorityHost.endsWith('.cn')) return 'api://AzureADTokenExchangeChina';
  return 'api://AzureADTokenExchange';
}

export function parseGenericProviders(
  json: string,
  env: Env,
  insecure: boolean,
  problems: Problems,
): Record<string, GenericProviderConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    problems.push({ variable: 'BROKER_PROVIDERS', reason: 'must be a JSON object' });
    return {};
  }
  const parsed = z.record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/), genericProviderSchema).safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ variable: 'BROKER_PROVIDERS', reason: `${issue.path.join('.')}: ${issue.message}` });
    }
    return {};
  }
  const out: Record<string, GenericProviderConfig> = {};
  for (const [name, p] of Object.entries(parsed.data)) {
    if (name === 'microsoft') {
      problems.push({ variable: 'BROKER_PROVIDERS', reason: 'the name microsoft is reserved' });
      continue;
    }
    const preset = p.preset ? presetFor(p.preset) : undefined;
    const issuer = p.issuer ?? preset?.issuer;
    const authorizationUrl = p.authorizationUrl ?? preset?.authorizationUrl;
    const tokenUrl = p.tokenUrl ?? preset?.tokenUrl;
    if (!issuer && (!authorizationUrl || !tokenUrl)) {
      problems.push({
        variable: 'BROKER_PROVIDERS',
        reason: preset?.requiresIssuer
          ? `${name}.issuer: the ${p.preset} preset needs your tenant's issuer URL`
          : `${name}: set issuer (endpoints then come from its discovery document) or both authorizationUrl and tokenUrl`,
      });
      continue;
    }
    for (const url of [authorizationUrl, tokenUrl, p.jwksUrl, issuer]) {
      if (url !== undefined && !url.startsWith('https:') && !insecure) {
        problems.push({
          variable: 'BROKER_PROVIDERS',
          reason: `${name}: endpoints, issuer and jwksUrl must be https`,
        });
        break;
      }
    }
    let credential: ClientCredential = { kind: 'none' };
    if (p.clientAuthMethod !== 'none') {
      const secret = p.clientSecretSetting ? env[p.clientSecretSetting] : undefined;
      if (secret && isUnresolvedKeyVaultReference(secret)) {
        problems.push({
          variable: p.clientSecretSetting ?? 'BROKER_PROVIDERS',
          reason: `${name}: ${KEY_VAULT_REFERENCE_UNRESOLVED}`,
        });
      } else if (!secret) {
        problems.push({
          variable: p.clientSecretSetting ?? 'BROKER_PROVIDERS',
          reason: `${name}: client secret missing`,
        });
      } else {
        credential = { kind: 'secret', secret, method: p.clientAuthMethod };
      }
    }
    const provider: GenericProviderConfig = {
      kind: 'oauth2',
      name,
      clientId: p.clientId,
      credential,
      defaultScopes: p.defaultScopes ?? [...(preset?.defaultScopes ?? [])],
      extraAuthorizeParams: p.extraAuthorizeParams ?? { ...preset?.extraAuthorizeParams },
      extraTokenParams: p.extraTokenParams,
      usePkce: p.usePkce,
    };
    if (p.preset) provider.preset = p.preset;
    if (authorizationUrl) provider.authorizationUrl = authorizationUrl;
    if (tokenUrl) provider.tokenUrl = tokenUrl;
    const defaultExpiresIn = p.defaultExpiresInSeconds ?? preset?.defaultExpiresInSeconds;
    if (defaultExpiresIn !== undefined) provider.defaultExpiresInSeconds = defaultExpiresIn;
    if (p.idTokenSigningAlgs) provider.idTokenSigningAlgs = p.idTokenSigningAlgs;
    if (issuer) provider.issuer = issuer;
    if (p.jwksUrl) provider.jwksUrl = p.jwksUrl;
    out[name] = provider;
  }
  return out;
}

/**
 * Microsoft accepts client assertions signed with RSA only (PS256/RS256), and the assertion names the
 * certificate by its thumbprint: an EC key, or a key of another certificate, would fail every token request.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
 */
function certificateProblem(keyPem: string, certificatePem: string): string | undefined {
  try {
    const key = createPrivateKey(keyPem);
    if (key.asymmetricKeyType !== 'rsa')
      return `the private key must be RSA (Microsoft signs client assertions with RSA), not ${key.asymmetricKeyType ?? 'unknown'}`;
    if (!new X509Certificate(certificatePem).checkPrivateKey(key))
      return 'the private key does not belong to the certificate in the bundle';
    return undefined;
  } catch {
    return 'the PEM key or certificate cannot be read';
  }
}
