import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Broker } from '../../shared/broker/broker.ts';
import { keyIdOf, parseConfig } from '../../shared/config.ts';
import { Keyring } from '../../shared/crypto.ts';
import { shouldRefresh } from '../../shared/broker/refreshPolicy.ts';
import { BrokerError } from '../../shared/errors.ts';
import { createMemoryLock } from '../../shared/lock/memoryLock.ts';
import { createLogger } from '../../shared/log.ts';
import { createProviderClient } from '../../shared/oauth/provider.ts';
import { createTransport } from '../../shared/oauth/transport.ts';
import { createFileStore } from '../../shared/store/fileStore.ts';
import { type ConnectionRecord, type TokenStore, toMetadata } from '../../shared/store/types.ts';
import { driveAuthorization } from '../../tools/demo-idp/driver.ts';
import { type DemoIdp, startDemoIdp, type TokenFault } from '../../tools/demo-idp/server.ts';
import { SecretScanner } from '../support/secrets.ts';

// Documented Microsoft identity platform error shapes, each answered by the demo IdP in Microsoft mode to a real
// broker (real provider client over undici, file store, controllable clock). Each row says where the shape is
// documented or observed, and what the broker must do:
//   status  — the connection's status afterwards;
//   served  — whether the caller still gets the access token that is still valid (refresh_in passed, ~58 min
//             left; or, for `ads` rows, the Graph token while the Advertising read fails);
//   retry   — the earliest automatic retry: a floor in seconds (Microsoft: first retry after 5xx/timeout ≥ 5 s,
//             never before Retry-After), or null = no automatic retry (a person must act);
//   answer  — the problem code the failing read gets when no token is served.
//
// Sources (public):
const REF = 'https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes';
const AUTHCODE = 'https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow';
const CLAIMS = 'https://learn.microsoft.com/en-us/entra/identity-platform/claims-challenge';
const UIREQ =
  'https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/exceptions/understanding-msaluirequiredexception';
const MSAL_IR =
  'https://github.com/AzureAD/microsoft-authentication-library-for-js/blob/dev/lib/msal-common/src/error/InteractionRequiredAuthError.ts';
const WIF = 'https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation-considerations';
const RESILIENCE = 'https://learn.microsoft.com/en-us/entra/architecture/resilience-client-app';
const RESILIENCE_DAEMON = 'https://learn.microsoft.com/en-us/entra/architecture/resilience-daemon-app';
const THROTTLING =
  'https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/client-and-server-throttling';
const ADS_MFA = 'https://learn.microsoft.com/en-us/advertising/guides/authentication-oauth-mfa';
const ADS_TOKENS = 'https://learn.microsoft.com/en-us/advertising/guides/authentication-oauth-get-tokens';
const RT = 'https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens';
const CLIENT_CREDS =
  'https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow';

const GRAPH = 'https://graph.microsoft.com/Mail.Send';
const ADS = 'https://ads.microsoft.com/msads.manage';
const CA_CLAIMS =
  '{"access_token":{"capolids":{"essential":true,"values":["8a2c5e0b-1d4f-4a9e-b6c3-5f7e9d2a1b04"]}}}';
const DEVICE_CLAIMS = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}';

interface Row {
  name: string;
  source: string;
  /** The Microsoft answer. `reset` = the connection is reset instead. */
  shape: Omit<TokenFault, 'grantType' | 'count' | 'scope'>;
  /** `graph` (default): the connection's own token is refreshed early; `ads`: a second resource is asked. */
  on?: 'graph' | 'ads';
  /** The broker authenticates with a managed identity as federated credential (default: client secret). */
  federated?: boolean;
  status: ConnectionRecord['status'];
  served: boolean;
  retry: number | null;
  /** Problem code of the failing read (when `served` is false, or for `ads` rows the Advertising read). */
  answer?: string;
}

const ig = (codes: number[], suberror?: string) => ({
  status: 400,
  error: 'invalid_grant',
  errorCodes: codes,
  ...(suberror ? { suberror } : {}),
});
const ir = (codes: number[], extra: { suberror?: string; claims?: string } = {}) => ({
  status: 400,
  error: 'interaction_required',
  errorCodes: codes,
  ...extra,
});
const ic = (codes: number[]) => ({ status: 401, error: 'invalid_client', errorCodes: codes });

const REVOKED = {
  status: 'needs_reauth',
  served: false,
  retry: null,
  answer: 'connection_needs_reauth',
} as const;
const INTERACTION = { status: 'needs_reauth', served: true, retry: null } as const;
const CONFIG = { status: 'error', served: true, retry: null } as const;
const TRANSIENT = (floor = 5) => ({ status: 'active', served: true, retry: floor }) as const;
const RESOURCE = (answer: string) =>
  ({ on: 'ads', status: 'active', served: true, retry: null, answer }) as const;

const ROWS: Row[] = [
  // Revocation: the refresh token is gone. The grant is over, a still-valid token is withheld.
  {
    name: '700082 inactive 90 days (invalid_grant/bad_token)',
    source: `${REF} ; https://github.com/microsoft/foundry-dev-tools/issues/707`,
    shape: ig([700082], 'bad_token'),
    ...REVOKED,
  },
  { name: '70008 expired grant (invalid_grant)', source: REF, shape: ig([70008]), ...REVOKED },
  {
    name: '50173 grant revoked, password reset (invalid_grant)',
    source: `${REF} ; ${RT} ; https://github.com/microsoft/azuredatastudio/issues/13953`,
    shape: ig([50173]),
    ...REVOKED,
  },
  {
    name: '70000 invalid refresh token (invalid_grant)',
    source: `${REF} ; ${AUTHCODE}`,
    shape: ig([70000]),
    ...REVOKED,
  },
  {
    name: '700084 SPA refresh token lifetime over (invalid_grant)',
    source: REF,
    shape: ig([700084]),
    ...REVOKED,
  },
  { name: '50057 account disabled (invalid_grant)', source: REF, shape: ig([50057]), ...REVOKED },
  {
    name: '53003 Conditional Access block observed as plain invalid_grant',
    source: `${REF} ; https://github.com/OfficeDev/BotBuilder-MicrosoftTeams/issues/284`,
    shape: ig([53003]),
    ...REVOKED,
  },
  {
    name: '50196 loop detected (invalid_grant; MSAL surfaces it as UI required)',
    source: THROTTLING,
    shape: ig([50196]),
    ...REVOKED,
  },
  {
    name: 'interaction_required with bad_token (MSAL drops the refresh token)',
    source: MSAL_IR,
    shape: ir([700082], { suberror: 'bad_token' }),
    ...REVOKED,
  },
  {
    name: 'password change or removed permissions (invalid_grant, no code)',
    source: ADS_TOKENS,
    shape: { status: 400, error: 'invalid_grant', errorCodes: [70000] },
    ...REVOKED,
  },
  // Consent withdrawn for the connection's own scopes: treated like revocation.
  {
    name: '65001 consent missing (invalid_grant/consent_required)',
    source: `${REF} ; https://github.com/MicrosoftDocs/azure-docs/issues/39189`,
    shape: ig([65001], 'consent_required'),
    ...REVOKED,
  },
  {
    name: '65001 as consent_required error value',
    source: `${AUTHCODE} ; ${MSAL_IR}`,
    shape: { status: 400, error: 'consent_required', errorCodes: [65001] },
    ...REVOKED,
  },
  // Interaction: the grant stands, Microsoft wants a sign-in step. The token already issued is served to expiry.
  {
    name: '50076 MFA required (interaction_required)',
    source: `${REF} ; https://github.com/microsoft/vscode-azureappservice/issues/2592`,
    shape: ir([50076]),
    ...INTERACTION,
  },
  {
    name: '50079 MFA registration required (interaction_required)',
    source: REF,
    shape: ir([50079]),
    ...INTERACTION,
  },
  {
    name: '50078 presented MFA expired (interaction_required)',
    source: REF,
    shape: ir([50078]),
    ...INTERACTION,
  },
  {
    name: '53003 CA block (interaction_required/message_only)',
    source: `${UIREQ} ; https://github.com/MartinIngesen/MSOLSpray/issues/5`,
    shape: ir([53003], { suberror: 'message_only' }),
    ...INTERACTION,
  },
  {
    name: '53003 CA with claims challenge (capolids)',
    source: `${CLAIMS} ; ${AUTHCODE}`,
    shape: ir([53003], { claims: CA_CLAIMS }),
    ...INTERACTION,
  },
  {
    name: '53000 compliant device required, claims challenge',
    source: `${REF} ; ${CLAIMS}`,
    shape: ir([53000], { claims: DEVICE_CLAIMS }),
    ...INTERACTION,
  },
  {
    name: '70043 sign-in frequency (interaction_required/token_expired)',
    source: `${REF} ; https://github.com/microsoft/vscode-azure-account/issues/673`,
    shape: ir([70043], { suberror: 'token_expired' }),
    ...INTERACTION,
  },
  {
    name: '70043 sign-in frequency (invalid_grant/token_expired)',
    source: `${REF} ; https://github.com/nais/device/issues/45`,
    shape: ig([70043], 'token_expired'),
    ...INTERACTION,
  },
  {
    name: '50055 password expired (invalid_grant/user_password_expired)',
    source: `${UIREQ} ; ${MSAL_IR}`,
    shape: ig([50055], 'user_password_expired'),
    ...INTERACTION,
  },
  {
    name: 'basic_action: fixable during sign-in',
    source: `${UIREQ} ; ${MSAL_IR}`,
    shape: ig([50076], 'basic_action'),
    ...INTERACTION,
  },
  {
    name: 'additional_action: remedial step outside sign-in',
    source: `${UIREQ} ; ${MSAL_IR}`,
    shape: ig([50079], 'additional_action'),
    ...INTERACTION,
  },
  {
    name: 'login_required',
    source: `${AUTHCODE} ; ${MSAL_IR}`,
    shape: { status: 400, error: 'login_required', errorCodes: [50058] },
    ...INTERACTION,
  },
  // A second resource (Microsoft Advertising) refused; the connection and its Graph token are untouched.
  {
    name: 'ads: 50076 MFA for msads.manage',
    source: `${ADS_MFA} ; ${REF}`,
    shape: ir([50076]),
    ...RESOURCE('resource_needs_reauth'),
  },
  {
    name: 'ads: 50079 MFA registration',
    source: `${ADS_MFA} ; ${REF}`,
    shape: ir([50079]),
    ...RESOURCE('resource_needs_reauth'),
  },
  {
    name: 'ads: 53003 CA with claims challenge',
    source: `${CLAIMS} ; ${REF}`,
    shape: ir([53003], { claims: CA_CLAIMS }),
    ...RESOURCE('resource_needs_reauth'),
  },
  {
    name: 'ads: 65001 consent missing for msads.manage',
    source: `${ADS_MFA} ; ${REF}`,
    shape: ig([65001], 'consent_required'),
    ...RESOURCE('scope_not_granted'),
  },
  {
    name: 'ads: 70000 scope not authorised (invalid_grant)',
    source: ADS_MFA,
    shape: ig([70000]),
    ...RESOURCE('resource_needs_reauth'),
  },
  {
    name: 'ads: 70011 invalid scope',
    source: REF,
    shape: { status: 400, error: 'invalid_scope', errorCodes: [70011] },
    ...RESOURCE('scope_not_granted'),
  },
  {
    name: 'ads: 500011 resource principal not in tenant',
    source: REF,
    shape: { status: 400, error: 'invalid_resource', errorCodes: [500011] },
    ...RESOURCE('scope_not_granted'),
  },
  {
    name: 'ads: bad_token means the refresh token itself is dead',
    source: MSAL_IR,
    shape: ig([700082], 'bad_token'),
    on: 'ads',
    status: 'needs_reauth',
    served: false,
    retry: null,
    answer: 'connection_needs_reauth',
  },
  // Broker configuration: an administrator must act; nothing says the grant is gone, so the valid token serves.
  {
    name: '7000215 wrong client secret (invalid_client, 401)',
    source: `${REF} ; https://github.com/sjkp/letsencrypt-siteextension/issues/117`,
    shape: ic([7000215]),
    ...CONFIG,
  },
  {
    name: '7000222 client secret expired (invalid_client)',
    source: `${REF} ; https://github.com/vcheckzen/FODI/issues/23`,
    shape: ic([7000222]),
    ...CONFIG,
  },
  {
    name: '700027 assertion signature invalid (invalid_client)',
    source: REF,
    shape: ic([700027]),
    ...CONFIG,
  },
  {
    name: '7000218 no credential in the request (invalid_client)',
    source: REF,
    shape: ic([7000218]),
    ...CONFIG,
  },
  {
    name: '700016 app not in the directory (unauthorized_client)',
    source: REF,
    shape: { status: 400, error: 'unauthorized_client', errorCodes: [700016] },
    ...CONFIG,
  },
  {
    name: '900144 missing parameter (invalid_request)',
    source: REF,
    shape: { status: 400, error: 'invalid_request', errorCodes: [900144] },
    ...CONFIG,
  },
  {
    name: '70003 unsupported grant type',
    source: REF,
    shape: { status: 400, error: 'unsupported_grant_type', errorCodes: [70003] },
    ...CONFIG,
  },
  // Federated credential (managed identity assertion): Microsoft says retry, also after earlier successes.
  {
    name: '70021 federated credential not yet replicated (invalid_client, 401)',
    source: WIF,
    shape: ic([70021]),
    federated: true,
    ...TRANSIENT(),
  },
  {
    name: '700024 assertion outside its validity window (invalid_client)',
    source: `${REF} ; https://github.com/Azure/azure-workload-identity/issues/693`,
    shape: ic([700024]),
    federated: true,
    ...TRANSIENT(),
  },
  // Throttling and server trouble: back off, at least 5 s, never before Retry-After.
  {
    name: '500 server_error without Retry-After',
    source: `${RESILIENCE} ; ${AUTHCODE}`,
    shape: { status: 500, error: 'server_error', errorCodes: [50000] },
    ...TRANSIENT(),
  },
  {
    name: '503 temporarily_unavailable without Retry-After',
    source: `${RESILIENCE} ; ${AUTHCODE}`,
    shape: { status: 503, error: 'temporarily_unavailable', errorCodes: [90033] },
    ...TRANSIENT(),
  },
  {
    name: '503 with Retry-After: 30',
    source: RESILIENCE,
    shape: { status: 503, retryAfterSeconds: 30 },
    ...TRANSIENT(30),
  },
  { name: '504 HTML gateway page', source: RESILIENCE, shape: { status: 504, body: 'html' }, ...TRANSIENT() },
  { name: '502 empty body', source: RESILIENCE, shape: { status: 502, body: 'empty' }, ...TRANSIENT() },
  {
    name: '429 with Retry-After: 60 (90055 tenant throttled)',
    source: `${RESILIENCE_DAEMON} ; ${THROTTLING}`,
    shape: { status: 429, error: 'temporarily_unavailable', errorCodes: [90055], retryAfterSeconds: 60 },
    ...TRANSIENT(60),
  },
  { name: '429 without Retry-After', source: RESILIENCE_DAEMON, shape: { status: 429 }, ...TRANSIENT() },
  {
    name: '400 temporarily_unavailable (90006)',
    source: `${AUTHCODE} ; ${REF}`,
    shape: { status: 400, error: 'temporarily_unavailable', errorCodes: [90006] },
    ...TRANSIENT(),
  },
  {
    name: '400 temporarily_unavailable with Retry-After: 20 (40010)',
    source: `${AUTHCODE} ; ${REF}`,
    shape: { status: 400, error: 'temporarily_unavailable', errorCodes: [40010], retryAfterSeconds: 20 },
    ...TRANSIENT(20),
  },
  { name: 'connection reset without an answer', source: RESILIENCE, shape: { reset: true }, ...TRANSIENT() },
  {
    name: '200 with an HTML page instead of a token response',
    source: CLIENT_CREDS,
    shape: { status: 200, body: 'html' },
    ...TRANSIENT(),
  },
];

const CLIENT_ID = 'broker-msft-errors';
const BASE = 'https://broker.test';
const caller = { kind: 'function_key' as const };
const POLICY = { marginMs: 5 * 60_000, keepAliveMs: 7 * 24 * 3600_000 };

interface Harness {
  idp: DemoIdp;
  store: TokenStore;
  clock: { now: number };
  secretBroker: Broker;
  federatedBroker: Broker;
  logs: string[];
  secrets: SecretScanner;
  close(): Promise<void>;
}

async function start(): Promise<Harness> {
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    quiet: true,
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: [`${BASE}/api/callback`] }],
    accessTokenTtlSeconds: 3600,
    refreshInSeconds: 1800,
  });
  const dir = await mkdtemp(join(tmpdir(), 'msft-errors-'));
  const store = createFileStore({ dataDir: dir });
  const config = parseConfig({
    MICROSOFT_CLIENT_ID: CLIENT_ID,
    MICROSOFT_CLIENT_SECRET: clientSecret,
    MICROSOFT_AUTHORITY_HOST: idp.authorityHost,
    BROKER_ALLOW_INSECURE_HTTP: 'true',
    BROKER_PUBLIC_BASE_URL: BASE,
  });
  const providerConfig = config.providers.microsoft;
  if (!providerConfig) throw new Error('no provider');
  const transport = createTransport({ timeoutMs: 5000 });
  const deps = {
    fetch: transport.fetch,
    redirectUri: config.redirectUri,
    allowInsecureHttp: true,
    timeoutMs: 5000,
  };
  const secretProvider = createProviderClient(providerConfig, deps);
  // The same registration authenticating with a managed identity token as client assertion (the demo IdP
  // answers the injected fault before it looks at the credential).
  const federatedProvider = createProviderClient(
    {
      ...providerConfig,
      credential: { kind: 'managed_identity', clientId: 'uami', audience: 'api://AzureADTokenExchange' },
    },
    {
      ...deps,
      assertionSource: {
        getAssertion: () =>
          Promise.resolve({ token: 'mi-assertion', expiresOnTimestamp: Date.now() + 3600_000 }),
      },
    },
  );
  const key = randomBytes(32);
  const keyring = new Keyring([{ kid: keyIdOf(key), key }]);
  const clock = { now: Date.now() };
  const lock = createMemoryLock();
  const logs: string[] = [];
  const secrets = new SecretScanner();
  secrets.add('client secret', clientSecret);
  const broker = (provider: typeof secretProvider) =>
    new Broker({
      store,
      lock,
      providers: new Map([['microsoft', provider]]),
      keyring,
      log: createLogger({}, (_l, line) => logs.push(line)),
      publicBaseUrl: BASE,
      linkTtlSeconds: 900,
      policy: POLICY,
      sweepConcurrency: 4,
      now: () => clock.now,
    });
  return {
    idp,
    store,
    clock,
    secretBroker: broker(secretProvider),
    federatedBroker: broker(federatedProvider),
    logs,
    secrets,
    async close() {
      await transport.close();
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let h: Harness;
let n = 0;

before(async () => {
  h = await start();
});
after(async () => {
  // Close first, assert after.
  const logs = h.logs.join('\n');
  await h.close();
  h.secrets.assertAbsent(logs, 'broker logs');
});

async function record(name: string): Promise<ConnectionRecord> {
  const r = await h.store.get(name);
  if (!r) throw new Error(`no record ${name}`);
  h.secrets.add(`${name} refresh token`, r.tokens?.refreshToken);
  h.secrets.add(`${name} access token`, r.tokens?.primary?.accessToken);
  for (const e of Object.values(r.tokens?.extra ?? {})) h.secrets.add(`${name} extra token`, e.accessToken);
  return r;
}

/** Connects a Graph + Advertising connection through the demo IdP's sign-in pages. */
async function connect(broker: Broker, name: string, claims?: string): Promise<URL> {
  const { url } = await broker.createLink(name);
  const link = new URL(url).searchParams.get('link') ?? '';
  // The consent page says why when Microsoft asked for an extra step.
  assert.equal((await broker.describeConnect(name, link)).claimsChallenge, claims !== undefined);
  const start = await broker.beginConnect(name, link);
  const authorize = new URL(start.redirectUrl);
  if (claims !== undefined) assert.equal(authorize.searchParams.get('claims'), claims);
  const drive = await driveAuthorization(start.redirectUrl, {
    username: 'adele@demo.example',
    password: 'demo',
  });
  h.secrets.add('authorization code', drive.params.get('code'));
  await broker.completeCallback(drive.params, start.cookie.value);
  return authorize;
}

async function attempt(fn: () => Promise<{ access_token: string }>): Promise<string | BrokerError> {
  try {
    return (await fn()).access_token;
  } catch (err) {
    if (err instanceof BrokerError) return err;
    throw err;
  }
}

void describe(`Microsoft error shapes (${ROWS.length} documented answers) against the demo IdP`, () => {
  it('covers at least 40 documented shapes, each with a public source', () => {
    assert.ok(ROWS.length >= 40, `${ROWS.length} rows`);
    for (const r of ROWS) assert.match(r.source, /^https:\/\/(learn\.microsoft\.com|github\.com)\//, r.name);
  });

  for (const row of ROWS) {
    it(`${row.name} → ${row.status}, ${row.served ? 'still-valid token served' : 'no token'}, ${
      row.retry === null ? 'no automatic retry' : `retry ≥ ${row.retry} s`
    }`, async () => {
      const broker = row.federated ? h.federatedBroker : h.secretBroker;
      const name = `ms-${++n}`;
      h.idp.clearFaults();
      h.clock.now = Date.now();
      await h.secretBroker.upsertConnection(name, { provider: 'microsoft', scopes: [GRAPH, ADS] });
      await connect(h.secretBroker, name);
      const connected = await record(name);
      const graph = connected.tokens?.primary;
      assert.ok(graph?.refreshAt, 'Microsoft sent refresh_in');
      // Graph rows: refresh_in has passed, the Graph token has about 58 minutes left. Advertising rows: the Graph
      // token is fresh and the first Advertising read goes to the IdP.
      if (row.on !== 'ads') h.clock.now = (graph.refreshAt ?? 0) + 60_000;
      const before = h.idp.stats.refreshGrants;
      h.idp.injectTokenFault({
        ...row.shape,
        grantType: 'refresh_token',
        ...(row.on === 'ads' ? { scope: ADS } : {}),
      });

      const read =
        row.on === 'ads'
          ? await attempt(() => broker.getAccessToken(name, caller, [ADS]))
          : await attempt(() => broker.getAccessToken(name, caller));
      assert.equal(h.idp.stats.refreshGrants - before, 1, 'exactly one request reached the IdP');
      assert.equal(h.idp.tokenLog.at(-1)?.faulted, true);
      const after = await record(name);

      // The connection status.
      assert.equal(after.status, row.status, 'connection status');
      // The still-valid Graph token: served (on the failing read, or for `ads` rows on the next Graph read).
      const graphRead = row.on === 'ads' ? await attempt(() => broker.getAccessToken(name, caller)) : read;
      if (row.served) assert.equal(graphRead, graph.accessToken, 'the still-valid token is served');
      else assert.ok(graphRead instanceof BrokerError, 'no token is served');
      // And on the next read, now that the failure is recorded, without another IdP request.
      const again = await attempt(() => broker.getAccessToken(name, caller));
      if (row.served) assert.equal(again, graph.accessToken, 'the still-valid token is served again');
      else assert.ok(again instanceof BrokerError, 'still no token');
      // A refused resource is answered from memory for a while: asking Microsoft again cannot succeed.
      if (row.on === 'ads' && row.status === 'active') {
        const repeated = await attempt(() => broker.getAccessToken(name, caller, [ADS]));
        assert.ok(
          repeated instanceof BrokerError && repeated.code === row.answer,
          'same answer, from memory',
        );
      }
      // The failing read's answer.
      const failed = row.on === 'ads' ? read : graphRead;
      if (row.answer) {
        assert.ok(failed instanceof BrokerError, `expected ${row.answer}`);
        assert.equal(failed.code, row.answer);
      }
      // The retry timing.
      if (row.retry === null) {
        assert.equal(after.nextAttemptAt, undefined, 'no automatic retry scheduled');
        const later = h.clock.now + 10 * 60_000;
        const decision = shouldRefresh(toMetadata(after), later, POLICY);
        if (row.status === 'active') assert.equal(decision.reason, 'fresh', 'the sweep leaves it alone');
        else assert.equal(decision.refresh, false, 'the sweep does not retry');
      } else {
        const wait = (after.nextAttemptAt ?? 0) - h.clock.now;
        assert.ok(wait >= row.retry * 1000, `first retry after ${wait} ms, floor ${row.retry} s`);
        assert.ok(wait <= Math.max(row.retry, 7.5) * 1000, `first retry after ${wait} ms is bounded`);
        assert.equal(after.failures, 1);
      }
      assert.equal(h.idp.stats.refreshGrants - before, 1, 'nothing retried inline');

      // A token that cannot be refreshed is served only until it expires.
      if (row.served && row.status !== 'active') {
        const now = h.clock.now;
        h.clock.now = graph.expiresAt + 1;
        const expired = await attempt(() => broker.getAccessToken(name, caller));
        assert.ok(expired instanceof BrokerError, 'an expired token is never served');
        h.clock.now = now;
      }

      // Claims challenges travel into the next connect link's authorize request, and the sign-in clears them.
      const claims = row.shape.claims;
      // The connection view tells the administrator why, without the challenge itself.
      const view = await h.secretBroker.getConnection(name);
      assert.equal(view.claimsChallenge, claims ? true : undefined);
      if (row.status === 'needs_reauth') {
        const consent = row.shape.error === 'consent_required' || row.shape.suberror === 'consent_required';
        assert.equal(view.lastError?.cause, row.served ? 'interaction' : consent ? 'consent' : 'revoked');
      }
      if (claims) {
        assert.equal(after.claims, claims);
        h.idp.clearFaults();
        h.clock.now += 30_000; // the owner signs in half a minute later (well inside the refusal hold)
        const authorize = await connect(h.secretBroker, name, claims);
        assert.equal(authorize.searchParams.get('claims'), claims);
        const redemption = h.idp.tokenLog.filter((t) => t.grantType === 'authorization_code').at(-1);
        assert.equal(redemption?.claims, true, 'the code redemption carries the claims challenge too');
        const reconnected = await record(name);
        assert.equal(reconnected.status, 'active');
        assert.equal(reconnected.claims, undefined);
        if (row.on === 'ads') {
          // The new sign-in lifts the hold on the refused resource at once.
          const ads = await attempt(() => broker.getAccessToken(name, caller, [ADS]));
          assert.equal(typeof ads, 'string', 'the resource serves after the sign-in');
        }
      } else {
        assert.equal(after.claims, undefined);
      }
    });
  }
});
