/**
 * @module console/client/entra
 * Entra mode: the admin signs in with Microsoft through MSAL Browser (authorization code flow with PKCE, a
 * public SPA client) and the console sends the access token for the broker API as a bearer; the broker checks
 * its `Connections.Manage` app role exactly as for any manage caller. Loaded only in Entra mode.
 *
 * Tokens are cached in memory only (`memoryStorage`): a reload forgets them and signs in again (a quick bounce
 * while the Microsoft session lasts). MSAL keeps its short-lived request state (PKCE verifier, the returned
 * code) in sessionStorage across the redirect; no token is written to Web Storage.
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
  const redirectUri = `${location.origin}${consolePath}/redirect`;
  const pca: IPublicClientApplication = await createStandardPublicClientApplication({
    auth: { clientId: settings.clientId, authority: settings.authority, redirectUri },
    cache: { cacheLocation: BrowserCacheLocation.MemoryStorage },
  });
  const result = await pca.handleRedirectPromise();
  let account: AccountInfo | null = result?.account ?? pca.getAllAccounts()[0] ?? null;
  const scopes = [settings.scope];
  return {
    get account() {
      return account?.username;
    },
    async signIn() {
      await pca.loginRedirect({ scopes, redirectStartPage: `${location.origin}${consolePath}` });
    },
    async token() {
      if (!account) throw new Error('Sign in with Microsoft first.');
      try {
        return (await pca.acquireTokenSilent({ scopes, account })).accessToken;
      } catch (err) {
        if (err instanceof InteractionRequiredAuthError) {
          await pca.acquireTokenRedirect({ scopes, account });
        }
        throw err;
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
