/**
 * @module console/client/redirect
 * Entra mode: the page Microsoft redirects back to. MSAL Browser v5's redirect bridge hands the response to the
 * console (BroadcastChannel for silent renewals, sessionStorage for a full-page sign-in) and returns there.
 * @see https://github.com/AzureAD/microsoft-authentication-library-for-js/blob/dev/lib/msal-browser/docs/v4-migration.md
 */
import { broadcastResponseToMainFrame } from '@azure/msal-browser/redirect-bridge';

broadcastResponseToMainFrame().catch(() => {
  const main = document.getElementById('main');
  if (main)
    main.textContent = 'The Microsoft sign-in did not complete. Go back to the console and try again.';
});
