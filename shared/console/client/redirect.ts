/**
 * @module console/client/redirect
 * Entra mode: the page Microsoft sends the sign-in popup (and silent renewals) back to. MSAL Browser v5's
 * redirect bridge hands the response to the console over a BroadcastChannel and closes the popup.
 * @see https://github.com/AzureAD/microsoft-authentication-library-for-js/blob/dev/lib/msal-browser/docs/v4-migration.md
 */
import { broadcastResponseToMainFrame } from '@azure/msal-browser/redirect-bridge';

broadcastResponseToMainFrame().catch(() => {
  const main = document.getElementById('main');
  if (main)
    main.textContent = 'The Microsoft sign-in did not complete. Go back to the console and try again.';
});
