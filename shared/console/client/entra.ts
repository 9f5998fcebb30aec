/**
 * @module console/client/entra
 * Entra mode: the admin signs in with Microsoft through MSAL Browser (authorization code flow with PKCE, a
 * public SPA client) and the console sends the access token for the broker API as a bearer; the broker checks
 * its `Connections.Manage` app role exactly as for any manage caller. Loaded only in Entra mode.
 *
 * Tokens are cached in memory only (`memoryStorage`): a reload forgets them, like the pasted key. Sign-in runs in a
 * popup (MSAL refuses a full-page redirect with an in-memory cache, `in_mem_redirect_unavailable`) that comes
 * back through the redirect page, which hands the response over with a BroadcastChannel; no token is written to
 * Web Storage.
 * @see https://learn.microsoft.com/en-us/entra/identity-platform/scenario-spa-overview
 * @see https://github.com/AzureAD/microsoft-authentication-library-for-js/blob/dev/lib/msal-browser/docs/v4-migration.md
 */
import {
  type AccountInfo,
  BrowserCacheLocation,
  createStandardPublicClientApplication,
  InteractionRequiredAuthError,
  type IPublicClientApplication,
} from '@azure/msal-browser';

export interface EntraSettings {
  clientId: string;
  authority: string;
  scope: string;
}

export interface EntraSession {
  /** The signed-in account's username, or undefined before sign-in. */
  account: string | undefined;
  signIn(): Promise<void>;
  token(): Promise<string>;
  signOut(): Promise<void>;
}

export async function startEntra(settings: EntraSettings, consolePath: string): Promise<EntraSession> {
  // Microsoft sends the popup back here; the page only runs MSAL's redirect bridge (redirect.ts).
  const redirectUri = `${location.origin}${consolePath}/redirect`;
  const pca: IPublicClientApplication = await createStandardPublicClientApplication({
    auth: { clientId: settings.clientId, authority: settings.authority, redirectUri },
    cache: { cacheLocation: BrowserCacheLocation.MemoryStorage },
  });
  let account: AccountInfo | null = pca.getAllAccounts()[0] ?? null;
  const scopes = [settings.scope];
  return {
    get account() {
      return account?.username;
    },
    async signIn() {
      // A popup, not a full-page redirect: the tab (and the key pasted in it) stays, and MSAL's in-memory cache
      // cannot survive a redirect anyway. The popup returns through the redirect page's bridge.
      account = (await pca.loginPopup({ scopes })).account;
    },
    async token() {
      if (!account) throw new Error('Sign in with Microsoft first.');
      try {
        return (await pca.acquireTokenSilent({ scopes, account })).accessToken;
      } catch (err) {
        if (!(err instanceof InteractionRequiredAuthError)) throw err;
        const result = await pca.acquireTokenPopup({ scopes, account });
        account = result.account;
        return result.accessToken;
      }
    },
    async signOut() {
      const current = account;
      account = null;
      // Local only: ending the Microsoft session too would sign the admin out of every other app.
      await pca.clearCache(current ? { account: current } : {});
    },
  };
}
