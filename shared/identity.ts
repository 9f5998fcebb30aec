/**
 * @module identity
 * The Azure identity the broker uses for Key Vault, blob leases and the notification queue: the app's
 * user-assigned managed identity when its client id is configured, else DefaultAzureCredential (developer
 * sign-ins locally). One credential per client id per process, so its token cache is shared and a renewal never
 * builds a new credential (each new one would fetch a new token).
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';

const credentials = new Map<string, TokenCredential>();

export function azureCredential(clientId?: string): TokenCredential {
  const key = clientId ?? '';
  let credential = credentials.get(key);
  if (!credential) {
    credential = clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
    credentials.set(key, credential);
  }
  return credential;
}
