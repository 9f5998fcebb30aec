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

/** What a `?scope=` request may ask the provider for, or why it may not. */
export type ScopeDecision =
  | { ok: true; scopes: string[] }
  | { ok: false; code: 'scope_not_granted' | 'invalid_request'; reason: string };

const DEFAULT_SUFFIX = '/.default';
const norm = (s: string) => (s.includes('/') ? s : `${GRAPH}/${s}`).toLowerCase();

/**
 * The `?scope=` rule. Named scopes: each must be among the connection's granted scopes. `{resource}/.default`
 * ("every permission the app holds on that resource") is not a blank cheque: it is allowed only for a resource
 * the connection holds granted scopes on, alone (Microsoft refuses `.default` mixed with other scopes), and the
 * provider is asked for exactly those granted scopes — never for `.default` itself, which at Microsoft would
 * yield every permission consented to the app on that resource (admin consent included), not the connection's.
 * The one exception is a connection that consented to `{resource}/.default` itself: it is passed through.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc#the-default-scope
 */
export function decideRequestedScopes(
  requested: readonly string[],
  granted: readonly string[],
): ScopeDecision {
  const wanted = requested.filter((s) => !OIDC_SCOPES.has(s));
  const grantedSet = new Set(granted.filter((s) => !OIDC_SCOPES.has(s)).map(norm));
  const defaults = wanted.filter((s) => s.toLowerCase().endsWith(DEFAULT_SUFFIX));
  if (defaults.length === 0) {
    const missing = wanted.some((s) => !grantedSet.has(norm(s)));
    return missing
      ? { ok: false, code: 'scope_not_granted', reason: 'scope not granted' }
      : { ok: true, scopes: [...requested] };
  }
  const only = defaults[0] ?? '';
  if (wanted.length > 1) {
    return { ok: false, code: 'invalid_request', reason: '.default cannot be combined with other scopes' };
  }
  if (grantedSet.has(norm(only))) return { ok: true, scopes: [...requested] };
  const resource = resourceOf(only)?.toLowerCase();
  const held = granted.filter(
    (s) =>
      !OIDC_SCOPES.has(s) &&
      !s.toLowerCase().endsWith(DEFAULT_SUFFIX) &&
      resourceOf(s)?.toLowerCase() === resource,
  );
  if (held.length === 0) {
    return {
      ok: false,
      code: 'scope_not_granted',
      reason: '.default of a resource the connection holds no scope on',
    };
  }
  return { ok: true, scopes: [...new Set(held)] };
}

/** True when {@link decideRequestedScopes} allows the request. */
export function isSubsetOfGranted(requested: readonly string[], granted: readonly string[]): boolean {
  return decideRequestedScopes(requested, granted).ok;
}

export function parseScopeParam(value: string): string[] {
  return value.split(/[\s+]+/).filter((s) => s.length > 0);
}
