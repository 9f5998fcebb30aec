/**
 * @module oauth/scopes
 * Microsoft scope strings: which resource a scope belongs to, and what a login must add. A Microsoft access
 * token is for one resource, so every token request names the scopes of exactly one resource.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc
 */

export const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
const GRAPH = 'https://graph.microsoft.com';

/** `https://graph.microsoft.com/Mail.Send` → `https://graph.microsoft.com`; `Mail.Send` → Graph. */
export function resourceOf(scope: string): string | undefined {
  if (OIDC_SCOPES.has(scope)) return undefined;
  const slash = scope.lastIndexOf('/');
  if (slash < 0) return GRAPH;
  const resource = scope.slice(0, slash);
  return /^[a-z][a-z0-9+.-]*:\/\/?[^/]/i.test(resource) ? resource.replace(/\/+$/, '') : GRAPH;
}

/** Normalised, de-duplicated, sorted scope list as one string: the key of a cached token. */
export function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes.filter((s) => !OIDC_SCOPES.has(s)))].sort().join(' ');
}

/** The scopes of the first resource named (the resource the connection's primary token is for). */
export function primaryResourceScopes(scopes: readonly string[]): string[] {
  const resources = scopes.map(resourceOf);
  const first = resources.find((r) => r !== undefined);
  return scopes.filter((_, i) => resources[i] === first && first !== undefined);
}

export function distinctResources(scopes: readonly string[]): string[] {
  return [...new Set(scopes.map(resourceOf).filter((r): r is string => r !== undefined))];
}

/** True when every requested scope was consented (short Graph names and full forms compare equal). */
export function isSubsetOfGranted(requested: readonly string[], granted: readonly string[]): boolean {
  const norm = (s: string) => (s.includes('/') ? s : `${GRAPH}/${s}`).toLowerCase();
  const grantedSet = new Set(granted.map(norm));
  return requested
    .filter((s) => !OIDC_SCOPES.has(s))
    .every((s) => grantedSet.has(norm(s)) || s.endsWith('/.default'));
}

export function parseScopeParam(value: string): string[] {
  return value.split(/[\s+]+/).filter((s) => s.length > 0);
}
