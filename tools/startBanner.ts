// What `npm start`'s banner suggests as the first connection: Microsoft when it is configured, else the first
// generic provider of BROKER_PROVIDERS with its own default scopes (never "microsoft" when only generic ones are).

export function bannerConnection(
  settings: Record<string, string | undefined>,
  microsoftScopes: readonly string[],
): string {
  if (settings.MICROSOFT_CLIENT_ID) return JSON.stringify({ provider: 'microsoft', scopes: microsoftScopes });
  let first: string | undefined;
  try {
    first = Object.keys(JSON.parse(settings.BROKER_PROVIDERS ?? '{}') as Record<string, unknown>)[0];
  } catch {
    first = undefined; // the broker itself reports a malformed BROKER_PROVIDERS, naming the setting
  }
  return JSON.stringify({ provider: first ?? 'microsoft', scopes: first ? [] : microsoftScopes });
}
