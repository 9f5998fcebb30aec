/**
 * @module demo-idp/resources
 * The resources (APIs) the demo IdP will issue access tokens for, with the delegated scopes each one exposes and
 * the sentence the consent page shows for them. Scope names match case-insensitively, like Microsoft's.
 */
import { fullScope, OIDC_SCOPES } from './microsoft.ts';

export interface ResourceDefinition {
  /** Resource identifier = the scope prefix, e.g. `https://graph.microsoft.com` or `api://token-broker`. */
  resource: string;
  displayName: string;
  /** Delegated scope name → what the consent page says it allows ("Send mail as you"). */
  scopes: Record<string, string>;
}

export const DEFAULT_RESOURCES: readonly ResourceDefinition[] = [
  {
    resource: 'https://graph.microsoft.com',
    displayName: 'Microsoft Graph (demo)',
    scopes: {
      'Mail.Send': 'Send mail as you',
      'Mail.Read': 'Read your mail',
      'Mail.ReadWrite': 'Read and write your mail',
      'User.Read': 'Sign you in and read your profile',
      'Calendars.Read': 'Read your calendars',
    },
  },
  {
    resource: 'https://ads.microsoft.com',
    displayName: 'Microsoft Advertising (demo)',
    scopes: { 'msads.manage': 'Manage your Microsoft Advertising accounts' },
  },
  {
    resource: 'https://api.ads.microsoft.com',
    displayName: 'Microsoft Advertising sandbox (demo)',
    scopes: { 'msads.manage': 'Manage your Microsoft Advertising sandbox accounts' },
  },
  // The broker's own API: app-only tokens (client credentials with `/.default`), roles come from the caller.
  { resource: 'api://token-broker', displayName: 'token-broker', scopes: {} },
];

export const OIDC_SCOPE_TEXT: Readonly<Record<string, string>> = {
  openid: 'Sign you in',
  profile: 'View your basic profile',
  email: 'View your email address',
  offline_access: 'Stay signed in (keep access to data you have given it access to)',
};

export const DEFAULT_SCOPE = '.default';

export class ResourceRegistry {
  readonly #byResource = new Map<string, { def: ResourceDefinition; names: Map<string, string> }>();

  constructor(defs: readonly ResourceDefinition[]) {
    for (const def of defs) this.add(def);
  }

  add(def: ResourceDefinition): void {
    const names = new Map(Object.keys(def.scopes).map((name) => [name.toLowerCase(), name]));
    this.#byResource.set(def.resource, { def, names });
  }

  has(resource: string): boolean {
    return this.#byResource.has(resource);
  }

  displayName(resource: string): string {
    return this.#byResource.get(resource)?.def.displayName ?? resource;
  }

  /** The registered spelling of a scope name, `.default`, or undefined when the resource lacks it. */
  canonicalName(resource: string, name: string): string | undefined {
    if (name.toLowerCase() === DEFAULT_SCOPE) return DEFAULT_SCOPE;
    return this.#byResource.get(resource)?.names.get(name.toLowerCase());
  }

  /** Every full scope string a resource accepts (its delegated scopes plus `/.default`). */
  fullScopes(resource: string): string[] {
    const entry = this.#byResource.get(resource);
    if (!entry) return [];
    return [...Object.keys(entry.def.scopes), DEFAULT_SCOPE].map((name) => fullScope(resource, name));
  }

  /** Consent-page sentence for one scope (OIDC or full resource scope). */
  describe(scope: string): string {
    if (OIDC_SCOPES.has(scope)) return OIDC_SCOPE_TEXT[scope] ?? scope;
    const slash = scope.lastIndexOf('/');
    const entry = this.#byResource.get(scope.slice(0, slash));
    const name = scope.slice(slash + 1);
    const text = entry?.def.scopes[entry.names.get(name.toLowerCase()) ?? ''];
    return text ?? `Access ${name} on ${entry?.def.displayName ?? scope.slice(0, slash)}`;
  }
}
