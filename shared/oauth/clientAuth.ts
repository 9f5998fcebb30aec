/**
 * @module oauth/clientAuth
 * How the broker authenticates itself to the provider's token endpoint. One interface, four options:
 * client secret (post/basic), certificate (`private_key_jwt`), and a user-assigned managed identity used as a
 * federated identity credential (its token for `api://AzureADTokenExchange` is the client assertion).
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials
 * @see https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import type { ClientCredential } from '../config.ts';

/** Supplies an assertion token (e.g. a managed identity token); injectable for tests. */
export interface AssertionSource {
  getAssertion(): Promise<{ token: string; expiresOnTimestamp: number }>;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export function buildClientAuth(
  credential: ClientCredential,
  assertionSource?: AssertionSource,
): oauth.ClientAuth {
  switch (credential.kind) {
    case 'secret':
      return credential.method === 'client_secret_basic'
        ? oauth.ClientSecretBasic(credential.secret)
        : oauth.ClientSecretPost(credential.secret);
    case 'certificate':
      return certificateAuth(credential.privateKeyPem, credential.certificatePem);
    case 'managed_identity': {
      const source = assertionSource ?? managedIdentityAssertion(credential.clientId, credential.audience);
      return federatedAuth(source);
    }
    case 'none':
      return oauth.None();
  }
}

function certificateAuth(privateKeyPem: string, certificatePem: string): oauth.ClientAuth {
  const keyObject = createPrivateKey(privateKeyPem);
  if (keyObject.asymmetricKeyType !== 'rsa') throw new Error('certificate key must be RSA');
  const der = new X509Certificate(certificatePem).raw;
  const x5tS256 = createHash('sha256').update(der).digest('base64url');
  // Microsoft's current guidance: PS256 with the certificate's SHA-256 thumbprint in `x5t#S256`.
  const key = keyObject.toCryptoKey({ name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']);
  return (as, client, body, headers) =>
    // Built per call so the audience is always the endpoint this request goes to.
    oauth.PrivateKeyJwt(key, {
      [oauth.modifyAssertion]: (header, payload) => {
        header.typ = 'JWT';
        header['x5t#S256'] = x5tS256;
        // Entra expects the token endpoint as audience, not the (templated) issuer.
        if (as.token_endpoint) payload.aud = as.token_endpoint;
      },
    })(as, client, body, headers);
}

/** Renew this long before expiry: a stale assertion fails with AADSTS700024 (invalid_client). */
export const ASSERTION_RENEW_BEFORE_MS = 10 * 60_000;

function federatedAuth(source: AssertionSource): oauth.ClientAuth {
  let cached: { token: string; expiresOnTimestamp: number } | undefined;
  let pending: Promise<{ token: string; expiresOnTimestamp: number }> | undefined;
  const current = async () => {
    if (cached && cached.expiresOnTimestamp - Date.now() >= ASSERTION_RENEW_BEFORE_MS) return cached;
    // One renewal at a time; a failed one is not cached, so the next request tries again.
    pending ??= source.getAssertion().finally(() => (pending = undefined));
    cached = await pending;
    return cached;
  };
  return async (_as, client, body) => {
    const assertion = await current();
    body.set('client_id', client.client_id);
    body.set('client_assertion_type', JWT_BEARER);
    body.set('client_assertion', assertion.token);
  };
}

function managedIdentityAssertion(clientId: string, audience: string): AssertionSource {
  return {
    async getAssertion() {
      // Loaded lazily: @azure/identity is only needed when this option is configured. One credential per
      // process (identity.ts): a new one per assertion would fetch a new token every time.
      const { azureCredential } = await import('../identity.ts');
      const token = await azureCredential(clientId).getToken(`${audience}/.default`);
      if (!token) throw new Error('managed identity returned no token');
      return { token: token.token, expiresOnTimestamp: token.expiresOnTimestamp };
    },
  };
}
