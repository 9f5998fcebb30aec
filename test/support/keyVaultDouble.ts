/**
 * A loopback HTTPS stand-in for the Key Vault secrets data plane, built from public evidence (sources beside each
 * behaviour below, and per behaviour in docs/keyvault-double.md), so the
 * REAL `SecretClient` (no SDK mocking) can be exercised: the 401 challenge, percent-encoded `api%2Dversion`,
 * full-URL ids with 32-hex versions, IntDate seconds, paging with absolute `nextLink` + `$skiptoken` and
 * `maxresults` <= 25, soft delete / recover / purge, and the service's exact error bodies.
 *
 * Modelled BY DEFAULT because the store depends on them (each cited where it is implemented; the list of what is
 * NOT modelled is in docs/keyvault-double.md):
 * - two throttling budgets per 10 s: 300 secret writes (PUT) and 4,000 for every other transaction, 429
 *   `Throttled` without `Retry-After`, throttled requests not counted;
 * - asynchronous soft delete: `GET /deletedsecrets/{name}` answers 404 for a while after the DELETE;
 * - soft-deleted secrets occupy slots of `GET /secrets` pages, so a page can be empty and still have a nextLink.
 *
 * Knobs for tests and benchmarks: latency, the budgets (answering 429 with or without `Retry-After`), one-shot /
 * rate fault injection (status, delay, connection reset before or after the operation), purge protection, the
 * delete/recover/purge windows, a clock, and per-operation counters.
 *
 * In-process use:
 *   const kv = await startKeyVaultDouble();
 *   new SecretClient(kv.vaultUrl, kv.credential, kv.secretClientOptions());
 *
 * Separate process (multi-process tests, benchmarks):
 *   node test/support/keyVaultDouble.ts --port 0 --ca-file /tmp/kv-ca.pem
 * prints one JSON line `{"vaultUrl":…,"token":…,"caFile":…,"controlUrl":…}` and serves until SIGTERM/SIGINT.
 * The other process then needs NODE_EXTRA_CA_CERTS=<caFile> (read at start-up), KEY_VAULT_URL=<vaultUrl>,
 * KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=true and KEY_VAULT_TEST_BEARER_TOKEN=<token> (see
 * shared/store/index.ts). Knobs and counters are reachable over HTTPS without auth under `/_double/`:
 * GET counters, POST reset, POST reset-counters, POST knobs with a {@link KnobsBody}.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AccessToken, TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { generate } from 'selfsigned';

export type OpKind =
  | 'get'
  | 'set'
  | 'update'
  | 'list'
  | 'listVersions'
  | 'delete'
  | 'getDeleted'
  | 'listDeleted'
  | 'purge'
  | 'recover'
  | 'backup'
  | 'restore';

const OP_KINDS: readonly OpKind[] = [
  'get',
  'set',
  'update',
  'list',
  'listVersions',
  'delete',
  'getDeleted',
  'listDeleted',
  'purge',
  'recover',
  'backup',
  'restore',
];

/** `total` = authenticated requests; `challenge` = unauthenticated probes answered 401. */
export type Counters = Record<
  OpKind | 'challenge' | 'throttled' | 'throttledWrites' | 'faulted' | 'total',
  number
>;

/** What an injected fault does to one request (the vault state is not touched). */
export type Fault =
  | {
      status: number;
      code?: string;
      innerCode?: string;
      message?: string;
      /** Seconds for `Retry-After`; false/absent = no header (what Key Vault was seen to send on 429). */
      retryAfter?: number | false;
      /** Sends `retry-after-ms` instead (the SDK honours it too). */
      retryAfterMs?: number;
    }
  /** Drops the connection before the operation runs: the vault is unchanged. */
  | { reset: true }
  /** Runs the operation, then drops the connection: the change happened but the client never hears of it
   * (a response lost in transit). */
  | { lostResponse: true }
  | { delayMs: number };

export interface ThrottleOptions {
  /** Transactions other than secret writes allowed per window. Real vault: 4,000 per 10 s. */
  limit: number;
  /** Secret writes (`PUT /secrets/{name}`, "CREATE secret") allowed per window. Real vault: 300 per 10 s. */
  writeLimit: number;
  windowMs: number;
  /** Send `Retry-After` (seconds until a slot frees) on 429. */
  retryAfter: boolean;
}

export interface LatencyOptions {
  fixedMs?: number;
  /** Extra uniform random latency in [0, randomMs). */
  randomMs?: number;
}

/** Windows during which a delete, recover or purge is still "in progress" on the server. */
export interface TimingOptions {
  /** Default {@link DEFAULT_DELETE_MS}: the deleted secret is not readable yet right after the DELETE. */
  deleteMs?: number;
  recoverMs?: number;
  purgeMs?: number;
}

export interface KeyVaultDoubleOptions {
  port?: number;
  host?: string;
  tenantId?: string;
  /** Bearer token the double accepts (and its credential returns). Default random. */
  token?: string;
  /** Default {@link DEFAULT_THROTTLE} (the real budgets, no `Retry-After`); false disables throttling. */
  throttle?: Partial<ThrottleOptions> | false;
  latency?: LatencyOptions;
  purgeProtection?: boolean;
  recoverableDays?: number;
  timing?: TimingOptions;
  /** Epoch ms for every time decision (budgets, delete windows, dates). Default `Date.now`. */
  clock?: () => number;
}

export interface SecretSnapshot {
  name: string;
  state: 'active' | 'deleted' | 'purging';
  versions: {
    version: string;
    value: string;
    enabled: boolean;
    tags?: Record<string, string>;
    contentType?: string;
  }[];
}

export interface KnobsBody {
  latency?: LatencyOptions;
  throttle?: Partial<ThrottleOptions> | false;
  failNext?: { n: number; fault: Fault; only?: OpKind[] };
  failRate?: { rate: number; fault: Fault; only?: OpKind[] };
  clearFaults?: boolean;
  purgeProtection?: boolean;
  timing?: TimingOptions;
}

export interface KeyVaultDouble {
  /** `https://127.0.0.1:<port>` — served at the host root, as the SDK's id parser requires. */
  readonly vaultUrl: string;
  readonly port: number;
  /** PEM of the self-signed certificate (its own trust anchor). */
  readonly ca: string;
  readonly token: string;
  /** Returns the accepted bearer token; records every request in {@link tokenRequests}. */
  readonly credential: TokenCredential;
  /** `tlsOptions.ca` + `disableChallengeResourceVerification: true`, merged over `extra`. */
  secretClientOptions(extra?: SecretClientOptions): SecretClientOptions;
  tokenRequests(): { scopes: string[]; tenantId?: string }[];
  counters(): Counters;
  resetCounters(): void;
  /** Clears secrets, counters, faults, and restores the start options. */
  reset(): void;
  setLatency(latency: LatencyOptions): void;
  setThrottle(throttle: Partial<ThrottleOptions> | false): void;
  /** The next `n` authenticated requests (of the `only` kinds, if given) get `fault`. */
  failNext(n: number, fault: Fault, only?: OpKind[]): void;
  /** Each authenticated request (of the `only` kinds) gets `fault` with probability `rate` (0-1). */
  failRate(rate: number, fault: Fault, only?: OpKind[]): void;
  clearFaults(): void;
  setPurgeProtection(on: boolean): void;
  /** Replaces the windows; an unset `deleteMs` is the default again (pass 0 for an instant delete). */
  setTiming(timing: TimingOptions): void;
  /** Reads the stored state directly (not counted, no HTTP). */
  inspect(name: string): SecretSnapshot | undefined;
  close(): Promise<void>;
}

interface Version {
  id: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

interface Entry {
  name: string;
  versions: Version[];
  state: 'active' | 'deleted' | 'purging';
  deletedDate?: number;
  scheduledPurgeDate?: number;
  /** A server-side operation still running until this epoch ms. */
  busy?: { kind: 'deleting' | 'recovering' | 'purging'; until: number };
}

interface FaultRule {
  fault: Fault;
  only?: OpKind[];
  remaining?: number;
  rate?: number;
}

interface Route {
  kind: OpKind;
  name?: string;
  version?: string;
}

class HttpError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, code: string, message: string, innerCode?: string) {
    super(message);
    this.status = status;
    this.body = { error: { code, message, ...(innerCode ? { innererror: { code: innerCode } } : {}) } };
  }
}

const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-f]{32}$/;
const MAX_VALUE_BYTES = 25_600;
const MAX_BODY_BYTES = 1024 * 1024;
// The 429 body (and its lack of Retry-After) as captured from the service in vcsjones/AzureSignTool#219.
const THROTTLE_MESSAGE =
  'Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached';

/**
 * Budgets per vault per 10 s: "CREATE secret: 300" and "All other transactions: 4,000" (Azure docs, Key Vault
 * service limits, https://learn.microsoft.com/azure/key-vault/general/service-limits, include
 * `includes/key-vault-limits.md` in MicrosoftDocs/azure-docs). Whether a new version of an existing secret counts
 * as CREATE is not documented; every PUT counts here (plan for the worse case). Throttled requests do not count
 * (https://learn.microsoft.com/azure/key-vault/general/overview-throttling).
 */
export const DEFAULT_THROTTLE: Readonly<ThrottleOptions> = Object.freeze({
  limit: 4000,
  writeLimit: 300,
  windowMs: 10_000,
  retryAfter: false,
});

/**
 * Soft delete completes asynchronously: after the DELETE answers 200, `GET /deletedsecrets/{name}` answers 404
 * for roughly 1-10 s (Azure SDK live recordings: azure-sdk-for-js
 * `sdk/keyvault/keyvault-secrets/recordings/node/` delete tests poll several 404s; azure-sdk-for-go
 * `sdk/security/keyvault/azsecrets/testdata/recordings/TestCRUD.json`). 2 s is a typical value inside that range.
 */
export const DEFAULT_DELETE_MS = 2000;

export async function startKeyVaultDouble(options: KeyVaultDoubleOptions = {}): Promise<KeyVaultDouble> {
  const host = options.host ?? '127.0.0.1';
  const tenantId = options.tenantId ?? '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const token = options.token ?? `kv-double-${randomBytes(12).toString('hex')}`;
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });

  const defaultThrottle = (t: Partial<ThrottleOptions> | false | undefined): ThrottleOptions | undefined =>
    t === false ? undefined : { ...DEFAULT_THROTTLE, ...t };
  const now = options.clock ?? Date.now;
  const defaultTiming = (t: TimingOptions | undefined): TimingOptions => ({
    deleteMs: DEFAULT_DELETE_MS,
    ...t,
  });

  const entries = new Map<string, Entry>();
  let counters = zeroCounters();
  let faults: FaultRule[] = [];
  let latency: LatencyOptions = { ...options.latency };
  let throttle = defaultThrottle(options.throttle);
  let purgeProtection = options.purgeProtection ?? false;
  let timing = defaultTiming(options.timing);
  const recoverableDays = options.recoverableDays ?? 90;
  /** Accepted request times per budget (sliding window). */
  let accepted: number[] = [];
  let acceptedWrites: number[] = [];
  const tokenRequests: { scopes: string[]; tenantId?: string }[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const sleep = (ms: number) =>
    new Promise<void>((done) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        done();
      }, ms);
      timers.add(timer);
    });

  const recoveryLevel = () =>
    purgeProtection
      ? recoverableDays < 90
        ? 'CustomizedRecoverable'
        : 'Recoverable'
      : recoverableDays < 90
        ? 'CustomizedRecoverable+Purgeable'
        : 'Recoverable+Purgeable';

  /** Ends in-progress server-side operations whose time has come. */
  const settle = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry?.busy && now() >= entry.busy.until) {
      delete entry.busy;
      if (entry.state === 'purging') {
        entries.delete(key);
        return undefined;
      }
    }
    return entry;
  };

  // ---- JSON shapes: Azure/azure-rest-api-specs specification/keyvault/Security.KeyVault.Secrets/models.tsp
  // (SecretBundle, SecretItem, DeletedSecretBundle; IntDate = Unix seconds) and that folder's examples/ ----
  const attributesOf = (v: Version) => ({
    enabled: v.enabled,
    ...(v.nbf === undefined ? {} : { nbf: v.nbf }),
    ...(v.exp === undefined ? {} : { exp: v.exp }),
    created: v.created,
    updated: v.updated,
    recoverableDays,
    recoveryLevel: recoveryLevel(),
  });
  const common = (v: Version) => ({
    ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
    attributes: attributesOf(v),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
  });
  const bundle = (base: string, e: Entry, v: Version, withValue: boolean) => ({
    ...(withValue ? { value: v.value } : {}),
    id: `${base}/secrets/${e.name}/${v.id}`,
    ...common(v),
  });
  const listItem = (base: string, e: Entry, v: Version, withVersion: boolean) => ({
    id: `${base}/secrets/${e.name}${withVersion ? `/${v.id}` : ''}`,
    ...common(v),
  });
  const deletedExtras = (base: string, e: Entry) => ({
    recoveryId: `${base}/deletedsecrets/${e.name}`,
    deletedDate: e.deletedDate,
    scheduledPurgeDate: e.scheduledPurgeDate,
  });
  const latest = (e: Entry): Version => e.versions[e.versions.length - 1] as Version;

  // ---- errors with the service's literal messages, as quoted from real responses in public issues:
  // SecretNotFound (secret) Azure/azure-sdk-for-js#25489;
  // "Deleted Secret not found" Azure/azure-sdk-for-net#26027; BadParameter invalid name
  // aspnet/MicrosoftConfigurationBuilders#22; error body shape {error:{code,message,innererror}} from models.tsp
  // KeyVaultError. maxresults 1-25 from routes.tsp; the maxresults and $skiptoken messages are approximated. ----
  const notFound = (what: string) =>
    new HttpError(
      404,
      'SecretNotFound',
      `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
    );
  const deletedNotFound = (name: string) =>
    new HttpError(404, 'SecretNotFound', `Deleted Secret not found: ${name}`);
  const badParameter = (message: string) => new HttpError(400, 'BadParameter', message);
  const badName = (name: string) => badParameter(`The request URI contains an invalid name: ${name}`);

  const activeEntry = (name: string, what = name): Entry => {
    const entry = settle(name.toLowerCase());
    if (!entry || entry.state !== 'active' || entry.busy) throw notFound(what);
    return entry;
  };
  const deletedEntry = (name: string): Entry => {
    const entry = settle(name.toLowerCase());
    if (!entry || entry.state !== 'deleted' || entry.busy) throw deletedNotFound(name);
    return entry;
  };

  /** One page of `sorted`; an entry whose `item` is undefined takes its slot but is not shown. */
  const page = <T>(url: URL, base: string, sorted: { key: string; item: T | undefined }[]) => {
    const raw = url.searchParams.get('maxresults');
    const max = raw === null ? 25 : Number(raw);
    if (!Number.isInteger(max) || max < 1 || max > 25) {
      throw badParameter('The value of the maxresults parameter must be between 1 and 25.');
    }
    const skip = url.searchParams.get('$skiptoken');
    let after = '';
    if (skip !== null) {
      try {
        after = String(
          (JSON.parse(Buffer.from(skip, 'base64url').toString('utf8')) as { after: string }).after,
        );
      } catch {
        throw badParameter('The $skiptoken is invalid.');
      }
    }
    const rest = sorted.filter((s) => s.key > after);
    const slice = rest.slice(0, max);
    let nextLink: string | null = null;
    if (rest.length > max) {
      const next = new URL(`${base}${url.pathname}`);
      next.searchParams.set('api-version', url.searchParams.get('api-version') ?? '');
      next.searchParams.set(
        '$skiptoken',
        Buffer.from(JSON.stringify({ after: slice.at(-1)?.key })).toString('base64url'),
      );
      if (raw !== null) next.searchParams.set('maxresults', String(max));
      nextLink = next.toString();
    }
    return { value: slice.flatMap((s) => (s.item === undefined ? [] : [s.item])), nextLink };
  };

  const nowSec = () => Math.floor(now() / 1000);
  const newVersionId = () => randomBytes(16).toString('hex');

  const parseJson = (body: Buffer): Record<string, unknown> => {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw badParameter('The request body is not a valid JSON object.');
  };

  // Tag and attribute limits: docs give the numbers; the exact error codes are UNCONFIRMED (400 BadParameter).
  const checkTags = (tags: unknown): Record<string, string> | undefined => {
    if (tags === undefined || tags === null) return undefined;
    if (typeof tags !== 'object' || Array.isArray(tags)) throw badParameter('Tags must be an object.');
    const out: Record<string, string> = {};
    const pairs = Object.entries(tags);
    if (pairs.length > 15) throw badParameter('The number of tags exceeds the maximum of 15.');
    for (const [k, v] of pairs) {
      if (typeof v !== 'string') throw badParameter('Tag values must be strings.');
      if (k.length > 256 || v.length > 256)
        throw badParameter('Tag names and values are limited to 256 characters.');
      out[k] = v;
    }
    return out;
  };
  const checkAttributes = (attributes: unknown): { enabled?: boolean; nbf?: number; exp?: number } => {
    if (attributes === undefined || attributes === null) return {};
    if (typeof attributes !== 'object') throw badParameter('Attributes must be an object.');
    const a = attributes as Record<string, unknown>;
    const out: { enabled?: boolean; nbf?: number; exp?: number } = {};
    if (a.enabled !== undefined) {
      if (typeof a.enabled !== 'boolean') throw badParameter('Property enabled must be a boolean.');
      out.enabled = a.enabled;
    }
    for (const key of ['nbf', 'exp'] as const) {
      if (a[key] === undefined || a[key] === null) continue;
      if (!Number.isInteger(a[key])) throw badParameter(`Property ${key} must be an IntDate.`);
      out[key] = a[key] as number;
    }
    return out;
  };
  const checkContentType = (ct: unknown): string | undefined => {
    if (ct === undefined || ct === null) return undefined;
    if (typeof ct !== 'string' || ct.length > 255)
      throw badParameter('contentType must be a string of at most 255 characters.');
    return ct;
  };

  // ---- operations ----
  const operations: Record<OpKind, (r: Route, url: URL, base: string, body: Buffer) => [number, unknown]> = {
    set(r, _url, base, body) {
      const name = r.name ?? '';
      const existing = settle(name.toLowerCase());
      if (existing?.busy?.kind === 'recovering') {
        throw new HttpError(
          409,
          'Conflict',
          `Secret ${name} is currently being recovered and cannot be re-created; retry later.`,
          'ObjectIsBeingRecovered',
        );
      }
      // 409s with the service's messages: being deleted Azure/azure-sdk-for-net#34322; deleted but recoverable
      // microsoft/AzureTRE#4294 and external-secrets/external-secrets#3519.
      if (existing && existing.state !== 'active') {
        if (existing.busy) {
          throw new HttpError(
            409,
            'Conflict',
            `Secret ${name} is currently being deleted and cannot be re-created; retry later.`,
            'ObjectIsBeingDeleted',
          );
        }
        throw new HttpError(
          409,
          'Conflict',
          `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
          'ObjectIsDeletedButRecoverable',
        );
      }
      const json = parseJson(body);
      if (typeof json.value !== 'string') throw badParameter('Property value is required.');
      if (Buffer.byteLength(json.value, 'utf8') > MAX_VALUE_BYTES) {
        throw badParameter('Secret is beyond the maximum permitted length of 25600 characters.');
      }
      const tags = checkTags(json.tags);
      const attributes = checkAttributes(json.attributes);
      const contentType = checkContentType(json.contentType);
      const now = nowSec();
      const version: Version = {
        id: newVersionId(),
        value: json.value,
        enabled: attributes.enabled ?? true,
        created: now,
        updated: now,
        ...(tags ? { tags } : {}),
        ...(contentType === undefined ? {} : { contentType }),
        ...(attributes.nbf === undefined ? {} : { nbf: attributes.nbf }),
        ...(attributes.exp === undefined ? {} : { exp: attributes.exp }),
      };
      const entry = existing ?? { name, versions: [], state: 'active' as const };
      entry.versions.push(version);
      entries.set(name.toLowerCase(), entry);
      return [200, bundle(base, entry, version, true)];
    },
    get(r, _url, base) {
      const name = r.name ?? '';
      const entry = activeEntry(name, r.version ? `${name}/${r.version}` : name);
      const version = r.version ? entry.versions.find((v) => v.id === r.version) : latest(entry);
      if (!version) throw notFound(`${name}/${r.version}`);
      // nbf/exp are informational; only enabled=false blocks a read (MicrosoftDocs/azure-docs
      // articles/key-vault/secrets/about-secrets.md); 403 SecretDisabled as quoted in Azure/azure-sdk-for-js#24756.
      if (!version.enabled) {
        throw new HttpError(
          403,
          'Forbidden',
          'Operation get is not allowed on a disabled secret.',
          'SecretDisabled',
        );
      }
      return [200, bundle(base, entry, version, true)];
    },
    update(r, _url, base, body) {
      const name = r.name ?? '';
      const entry = activeEntry(name);
      const version = r.version ? entry.versions.find((v) => v.id === r.version) : latest(entry);
      if (!version) throw notFound(`${name}/${r.version}`);
      const json = parseJson(body);
      const tags = checkTags(json.tags);
      const attributes = checkAttributes(json.attributes);
      const contentType = checkContentType(json.contentType);
      // PATCH changes only what it is given and never the value.
      if (tags) version.tags = tags;
      if (contentType !== undefined) version.contentType = contentType;
      if (attributes.enabled !== undefined) version.enabled = attributes.enabled;
      if (attributes.nbf !== undefined) version.nbf = attributes.nbf;
      if (attributes.exp !== undefined) version.exp = attributes.exp;
      version.updated = nowSec();
      return [200, bundle(base, entry, version, false)];
    },
    list(_r, url, base) {
      // Soft-deleted secrets still take their slot in a page, so a page can be `"value": []` with a nextLink
      // (azure-sdk-for-net SecretClientLiveTests `GetPropertiesOfSecrets.json` recording: two empty first pages;
      // the Go `TestListSecrets.json` recording pages the same way). Clients must follow nextLink, not stop.
      const items = [...entries.keys()]
        .map((key) => settle(key))
        .filter((e): e is Entry => e !== undefined)
        .map((e) => ({
          key: e.name.toLowerCase(),
          item: e.state === 'active' && !e.busy ? listItem(base, e, latest(e), false) : undefined,
        }))
        .sort((a, b) => (a.key < b.key ? -1 : 1));
      return [200, page(url, base, items)];
    },
    listVersions(r, url, base) {
      // An unknown name lists as an empty page (the SDK's own tests expect no error; UNCONFIRMED in docs).
      const entry = settle((r.name ?? '').toLowerCase());
      const versions = entry && entry.state === 'active' && !entry.busy ? entry.versions : [];
      const items = versions.map((v) => ({ key: v.id, item: listItem(base, entry as Entry, v, true) }));
      items.sort((a, b) => (a.key < b.key ? -1 : 1));
      return [200, page(url, base, items)];
    },
    delete(r, _url, base) {
      const entry = activeEntry(r.name ?? '');
      const at = now();
      entry.state = 'deleted';
      entry.deletedDate = Math.floor(at / 1000);
      entry.scheduledPurgeDate = entry.deletedDate + recoverableDays * 86_400;
      // Asynchronous soft delete (see DEFAULT_DELETE_MS): until `busy` ends, GET /deletedsecrets/{name} is 404,
      // PUT is 409 ObjectIsBeingDeleted and recover/purge are 409 too.
      if (timing.deleteMs) entry.busy = { kind: 'deleting', until: at + timing.deleteMs };
      return [200, { ...bundle(base, entry, latest(entry), false), ...deletedExtras(base, entry) }];
    },
    getDeleted(r, _url, base) {
      const entry = deletedEntry(r.name ?? '');
      return [200, { ...bundle(base, entry, latest(entry), false), ...deletedExtras(base, entry) }];
    },
    listDeleted(_r, url, base) {
      const items = [...entries.keys()]
        .map((key) => settle(key))
        .filter((e): e is Entry => e !== undefined && e.state === 'deleted' && !e.busy)
        .map((e) => ({
          key: e.name.toLowerCase(),
          item: { ...listItem(base, e, latest(e), false), ...deletedExtras(base, e) },
        }))
        .sort((a, b) => (a.key < b.key ? -1 : 1));
      return [200, page(url, base, items)];
    },
    purge(r) {
      const name = r.name ?? '';
      const entry = settle(name.toLowerCase());
      // Purge right after a delete: Azure/azure-sdk-for-net#7199; under purge protection: Azure/sap-automation#200,
      // microsoft/AzureTRE#1951 (the inner code is not known, so none is sent).
      if (entry?.state === 'deleted' && entry.busy) {
        throw new HttpError(409, 'Conflict', 'Secret is currently being deleted.', 'ObjectIsBeingDeleted');
      }
      if (entry?.state !== 'deleted') throw deletedNotFound(name);
      if (purgeProtection) {
        throw new HttpError(
          403,
          'Forbidden',
          'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: kv-double;location=local',
        );
      }
      if (timing.purgeMs) {
        entry.state = 'purging';
        entry.busy = { kind: 'purging', until: now() + timing.purgeMs };
      } else {
        entries.delete(name.toLowerCase());
      }
      return [204, undefined];
    },
    recover(r, _url, base) {
      const name = r.name ?? '';
      const entry = settle(name.toLowerCase());
      if (entry?.state === 'deleted' && entry.busy) {
        throw new HttpError(
          409,
          'Conflict',
          `Secret ${name} is currently being deleted.`,
          'ObjectIsBeingDeleted',
        );
      }
      if (entry?.state !== 'deleted') throw deletedNotFound(name);
      entry.state = 'active';
      delete entry.deletedDate;
      delete entry.scheduledPurgeDate;
      if (timing.recoverMs) entry.busy = { kind: 'recovering', until: now() + timing.recoverMs };
      return [200, bundle(base, entry, latest(entry), false)];
    },
    backup(r) {
      const entry = activeEntry(r.name ?? '');
      const blob = Buffer.from(
        JSON.stringify({ kvDoubleBackup: 1, name: entry.name, versions: entry.versions }),
      );
      return [200, { value: blob.toString('base64url') }];
    },
    restore(_r, _url, base, body) {
      const json = parseJson(body);
      let restored: Entry;
      try {
        const parsed = JSON.parse(Buffer.from(String(json.value), 'base64url').toString('utf8')) as {
          kvDoubleBackup: number;
          name: string;
          versions: Version[];
        };
        if (parsed.kvDoubleBackup !== 1 || !NAME.test(parsed.name) || parsed.versions.length === 0)
          throw new Error();
        restored = { name: parsed.name, versions: parsed.versions, state: 'active' };
      } catch {
        throw badParameter('Backup blob contains invalid or corrupt data.');
      }
      if (settle(restored.name.toLowerCase())) {
        throw new HttpError(409, 'Conflict', `Secret ${restored.name} already exists.`);
      }
      entries.set(restored.name.toLowerCase(), restored);
      return [200, bundle(base, restored, latest(restored), false)];
    },
  };

  const route = (method: string, segments: string[]): Route | undefined => {
    const [collection, name, third] = segments;
    if (collection === 'secrets') {
      if (segments.length === 1) return method === 'GET' ? { kind: 'list' } : undefined;
      if (name === 'restore' && segments.length === 2 && method === 'POST') return { kind: 'restore' };
      if (name === undefined) return undefined;
      if (segments.length === 2) {
        if (method === 'PUT') return { kind: 'set', name };
        if (method === 'GET') return { kind: 'get', name };
        if (method === 'DELETE') return { kind: 'delete', name };
        if (method === 'PATCH') return { kind: 'update', name };
        return undefined;
      }
      if (segments.length === 3 && third === 'versions' && method === 'GET')
        return { kind: 'listVersions', name };
      if (segments.length === 3 && third === 'backup' && method === 'POST') return { kind: 'backup', name };
      if (segments.length === 3) {
        // `/secrets/{name}/` (third === '') is the latest version, as the SDK sends it.
        if (method === 'GET') return third ? { kind: 'get', name, version: third } : { kind: 'get', name };
        if (method === 'PATCH')
          return third ? { kind: 'update', name, version: third } : { kind: 'update', name };
      }
      return undefined;
    }
    if (collection === 'deletedsecrets') {
      if (segments.length === 1) return method === 'GET' ? { kind: 'listDeleted' } : undefined;
      if (name === undefined) return undefined;
      if (segments.length === 2 && method === 'GET') return { kind: 'getDeleted', name };
      if (segments.length === 2 && method === 'DELETE') return { kind: 'purge', name };
      if (segments.length === 3 && third === 'recover' && method === 'POST') return { kind: 'recover', name };
    }
    return undefined;
  };

  const pickFault = (kind: OpKind | undefined): Fault | undefined => {
    for (const rule of faults) {
      if (rule.only && (!kind || !rule.only.includes(kind))) continue;
      if (rule.remaining !== undefined && rule.remaining > 0) {
        rule.remaining--;
        return rule.fault;
      }
      if (rule.rate !== undefined && Math.random() < rule.rate) return rule.fault;
    }
    faults = faults.filter((r) => r.remaining === undefined || r.remaining > 0);
    return undefined;
  };

  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: unknown,
    extra: Record<string, string> = {},
  ) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string | number> = {
      'cache-control': 'no-cache',
      pragma: 'no-cache',
      expires: '-1',
      'x-ms-request-id': randomUUID(),
      'x-ms-keyvault-region': 'local',
      'x-ms-keyvault-service-version': '1.9.2981.1',
      'x-ms-keyvault-network-info': 'conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;',
      'strict-transport-security': 'max-age=31536000;includeSubDomains',
      'x-content-type-options': 'nosniff',
      'content-length': Buffer.byteLength(text),
      ...extra,
    };
    const clientRequestId = req.headers['x-ms-client-request-id'];
    if (typeof clientRequestId === 'string') headers['x-ms-client-request-id'] = clientRequestId;
    if (text) headers['content-type'] = 'application/json; charset=utf-8';
    res.writeHead(status, headers);
    res.end(text);
  };

  const challenge = (req: IncomingMessage, res: ServerResponse, message: string) =>
    send(
      req,
      res,
      401,
      { error: { code: 'Unauthorized', message } },
      {
        'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="https://vault.azure.net"`,
      },
    );

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((done, fail) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => done(Buffer.concat(chunks)));
      req.on('error', fail);
    });

  const control = async (req: IncomingMessage, res: ServerResponse, action: string, body: Buffer) => {
    if (req.method === 'GET' && action === 'counters') return send(req, res, 200, { ...counters });
    if (req.method === 'POST' && action === 'reset') {
      api.reset();
      return send(req, res, 200, { ok: true });
    }
    if (req.method === 'POST' && action === 'reset-counters') {
      api.resetCounters();
      return send(req, res, 200, { ok: true });
    }
    if (req.method === 'POST' && action === 'knobs') {
      let knobs: KnobsBody;
      try {
        knobs = JSON.parse(body.toString('utf8') || '{}') as KnobsBody;
      } catch {
        return send(req, res, 400, { error: { code: 'BadParameter', message: 'knobs body is not JSON' } });
      }
      if (knobs.clearFaults) api.clearFaults();
      if (knobs.latency) api.setLatency(knobs.latency);
      if (knobs.throttle !== undefined) api.setThrottle(knobs.throttle);
      if (knobs.failNext) api.failNext(knobs.failNext.n, knobs.failNext.fault, knobs.failNext.only);
      if (knobs.failRate) api.failRate(knobs.failRate.rate, knobs.failRate.fault, knobs.failRate.only);
      if (knobs.purgeProtection !== undefined) api.setPurgeProtection(knobs.purgeProtection);
      if (knobs.timing) api.setTiming(knobs.timing);
      return send(req, res, 200, { ok: true });
    }
    await Promise.resolve();
    return send(req, res, 404, { error: { code: 'NotFound', message: 'unknown control action' } });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const base = `https://${req.headers.host ?? `${host}:${port}`}`;
    // The SDK percent-encodes the key (`api%2Dversion`); URLSearchParams decodes it.
    const url = new URL(req.url ?? '/', base);
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/_double/'))
      return control(req, res, url.pathname.slice('/_double/'.length), body);

    // The challenge comes before any validation: the SDK's first request is a body-less probe.
    const authorization = req.headers.authorization;
    if (!authorization) {
      counters.challenge++;
      return challenge(req, res, 'AKV10000: Request is missing a Bearer or PoP token.');
    }
    if (authorization !== `Bearer ${token}`) {
      counters.challenge++;
      return challenge(req, res, 'AKV10022: Invalid audience or token.');
    }

    const segments = url.pathname.replace(/^\//, '').split('/').map(decodeURIComponent);
    const r = route(method, segments);
    counters.total++;
    if (r) counters[r.kind]++;

    const delay = (latency.fixedMs ?? 0) + Math.random() * (latency.randomMs ?? 0);
    if (delay > 0) await sleep(delay);

    const fault = pickFault(r?.kind);
    let lostResponse = false;
    if (fault) {
      counters.faulted++;
      if ('reset' in fault) {
        req.socket.destroy();
        return;
      }
      if ('lostResponse' in fault) {
        lostResponse = true;
      } else if ('delayMs' in fault) {
        await sleep(fault.delayMs);
        if (req.socket.destroyed) return;
      } else {
        const headers: Record<string, string> = {};
        if (typeof fault.retryAfter === 'number') headers['retry-after'] = String(fault.retryAfter);
        if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
        const code = fault.code ?? defaultCode(fault.status);
        const message =
          fault.message ?? (fault.status === 429 ? THROTTLE_MESSAGE : `Injected ${fault.status}.`);
        return send(
          req,
          res,
          fault.status,
          { error: { code, message, ...(fault.innerCode ? { innererror: { code: fault.innerCode } } : {}) } },
          headers,
        );
      }
    }

    try {
      if (!url.searchParams.get('api-version')) {
        // The service requires api-version and has no default (MicrosoftDocs/azure-docs
        // articles/key-vault/general/authentication-requests-and-responses.md); message approximated.
        throw badParameter('The api-version query parameter is missing.');
      }
      if (!r) throw new HttpError(404, 'NotFound', 'The requested resource was not found.');

      if (throttle) {
        // Two budgets (see DEFAULT_THROTTLE): secret writes and everything else. The 429 body is the one
        // captured from the service ("Reason: VaultRequestTypeLimitReached"), seen without Retry-After.
        const t = now();
        const isWrite = r.kind === 'set';
        const window = (isWrite ? acceptedWrites : accepted).filter((at) => at > t - throttle!.windowMs);
        if (isWrite) acceptedWrites = window;
        else accepted = window;
        if (window.length >= (isWrite ? throttle.writeLimit : throttle.limit)) {
          // Throttled requests do not count towards the limit.
          counters.throttled++;
          if (isWrite) counters.throttledWrites++;
          const headers: Record<string, string> = {};
          if (throttle.retryAfter) {
            const oldest = window[0] ?? t;
            headers['retry-after'] = String(Math.max(1, Math.ceil((oldest + throttle.windowMs - t) / 1000)));
          }
          return send(req, res, 429, { error: { code: 'Throttled', message: THROTTLE_MESSAGE } }, headers);
        }
        window.push(t);
      }

      if (r.name !== undefined && !NAME.test(r.name)) throw badName(r.name);
      if (r.version !== undefined && !VERSION.test(r.version)) throw notFound(`${r.name}/${r.version}`);
      const [status, payload] = operations[r.kind](r, url, base, body);
      if (lostResponse) {
        req.socket.destroy();
        return;
      }
      return send(req, res, status, payload);
    } catch (err) {
      if (err instanceof HttpError) return send(req, res, err.status, err.body);
      return send(req, res, 500, { error: { code: 'InternalServerError', message: 'double failure' } });
    }
  };

  const server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.destroy();
    });
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, host, () => ready());
  });
  const port = (server.address() as AddressInfo).port;
  const vaultUrl = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const api: KeyVaultDouble = {
    vaultUrl,
    port,
    ca: pems.cert,
    token,
    credential: {
      getToken(scopes: string | string[], opts?: { tenantId?: string }): Promise<AccessToken> {
        tokenRequests.push({
          scopes: Array.isArray(scopes) ? [...scopes] : [scopes],
          ...(opts?.tenantId ? { tenantId: opts.tenantId } : {}),
        });
        return Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3600_000 });
      },
    },
    secretClientOptions: (extra = {}) => ({
      ...extra,
      tlsOptions: { ...extra.tlsOptions, ca: pems.cert },
      disableChallengeResourceVerification: true,
    }),
    tokenRequests: () => tokenRequests.map((t) => ({ ...t, scopes: [...t.scopes] })),
    counters: () => ({ ...counters }),
    resetCounters: () => {
      counters = zeroCounters();
    },
    reset: () => {
      entries.clear();
      counters = zeroCounters();
      faults = [];
      latency = { ...options.latency };
      throttle = defaultThrottle(options.throttle);
      accepted = [];
      acceptedWrites = [];
      purgeProtection = options.purgeProtection ?? false;
      timing = defaultTiming(options.timing);
      tokenRequests.length = 0;
    },
    setLatency: (l) => {
      latency = { ...l };
    },
    setThrottle: (t) => {
      throttle = defaultThrottle(t);
      accepted = [];
      acceptedWrites = [];
    },
    failNext: (n, fault, only) => {
      faults.push({ fault, remaining: n, ...(only ? { only } : {}) });
    },
    failRate: (rate, fault, only) => {
      faults.push({ fault, rate, ...(only ? { only } : {}) });
    },
    clearFaults: () => {
      faults = [];
    },
    setPurgeProtection: (on) => {
      purgeProtection = on;
    },
    setTiming: (t) => {
      timing = defaultTiming(t);
    },
    inspect: (name) => {
      const entry = settle(name.toLowerCase());
      if (!entry) return undefined;
      return {
        name: entry.name,
        state: entry.state,
        versions: entry.versions.map((v) => ({
          version: v.id,
          value: v.value,
          enabled: v.enabled,
          ...(v.tags ? { tags: { ...v.tags } } : {}),
          ...(v.contentType === undefined ? {} : { contentType: v.contentType }),
        })),
      };
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeAllConnections();
      await closed;
    },
  };
  return api;
}

function zeroCounters(): Counters {
  const counters = { challenge: 0, throttled: 0, throttledWrites: 0, faulted: 0, total: 0 } as Counters;
  for (const kind of OP_KINDS) counters[kind] = 0;
  return counters;
}

function defaultCode(status: number): string {
  switch (status) {
    case 400:
      return 'BadParameter';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 408:
      return 'RequestTimeout';
    case 409:
      return 'Conflict';
    case 429:
      return 'Throttled';
    case 503:
      return 'ServiceUnavailable';
    default:
      return 'InternalServerError';
  }
}

// ---- CLI mode: `node test/support/keyVaultDouble.ts --port N --ca-file PATH [--throttle-limit N]
//      [--throttle-write-limit N] [--throttle-window-ms MS] [--retry-after] [--delete-ms MS] [--purge-protection]` ----
async function main(argv: string[]): Promise<void> {
  const flag = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const limit = flag('throttle-limit');
  const writeLimit = flag('throttle-write-limit');
  const windowMs = flag('throttle-window-ms');
  const deleteMs = flag('delete-ms');
  const kv = await startKeyVaultDouble({
    port: Number(flag('port') ?? 0),
    ...(flag('host') ? { host: flag('host') } : {}),
    ...(flag('token') ? { token: flag('token') } : {}),
    purgeProtection: argv.includes('--purge-protection'),
    throttle: {
      ...(limit ? { limit: Number(limit) } : {}),
      ...(writeLimit ? { writeLimit: Number(writeLimit) } : {}),
      ...(windowMs ? { windowMs: Number(windowMs) } : {}),
      retryAfter: argv.includes('--retry-after'),
    },
    ...(deleteMs ? { timing: { deleteMs: Number(deleteMs) } } : {}),
  });
  const caFile = flag('ca-file');
  if (caFile) writeFileSync(caFile, kv.ca, { mode: 0o644 });
  process.stdout.write(
    `${JSON.stringify({ vaultUrl: kv.vaultUrl, token: kv.token, caFile, controlUrl: `${kv.vaultUrl}/_double/`, pid: process.pid })}\n`,
  );
  const stop = () => {
    void kv.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
