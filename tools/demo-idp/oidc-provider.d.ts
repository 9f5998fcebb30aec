// Minimal ambient types for oidc-provider 9 (it ships none and @types/oidc-provider is not installed). Only the
// surface tools/demo-idp uses is declared; everything else stays out so a wrong use fails to type-check.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type AdapterPayload = Record<string, unknown>;

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface ClientInstance {
    clientId: string;
    clientName?: string;
    redirectUris: string[];
    clientAuthMethod: string;
  }

  export interface ResourceServerInstance {
    audience?: string;
    scope: string;
  }

  export interface TokenInstance {
    kind: string;
    jti: string;
    accountId?: string;
    clientId?: string;
    grantId?: string;
    scope?: string;
    resourceServer?: ResourceServerInstance;
  }

  export interface GrantInstance {
    jti: string;
    accountId: string;
    clientId: string;
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface InteractionInstance {
    uid: string;
    returnTo: string;
    grantId?: string;
    params: Record<string, string | string[] | undefined>;
    prompt: {
      name: string;
      reasons: string[];
      details: {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
    };
    session?: { accountId: string; uid: string };
  }

  export interface OIDCContext {
    route: string;
    params?: Record<string, string | string[] | undefined>;
    client?: ClientInstance;
    entities: Record<string, unknown>;
  }

  export interface KoaContextWithOIDC {
    req: IncomingMessage;
    res: ServerResponse;
    path: string;
    method: string;
    status: number;
    body: unknown;
    type: string;
    respond: boolean;
    state: Record<string, unknown>;
    oidc: OIDCContext;
    set(field: string, value: string): void;
    get(field: string): string;
    remove(field: string): void;
    response: { get(field: string): string };
  }

  export type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

  export interface Account {
    accountId: string;
    claims(use: string, scope: string): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat: 'jwt' | 'opaque';
    jwt?: { sign: { alg: string } };
  }

  export interface JwtStructuredToken {
    header: Record<string, unknown> | undefined;
    payload: Record<string, unknown>;
  }

  export interface ErrorOut {
    error: string;
    error_description?: string;
    state?: string;
  }

  export type ClientMetadata = Record<string, unknown> & { client_id: string };

  export interface Configuration {
    adapter: (model: string) => Adapter;
    jwks: { keys: Record<string, unknown>[] };
    cookies: {
      keys: string[];
      names: { session: string; interaction: string; resume: string };
      long?: Record<string, unknown>;
      short?: Record<string, unknown>;
    };
    findAccount(ctx: KoaContextWithOIDC, id: string): Promise<Account | undefined>;
    claims: Record<string, string[]>;
    scopes: string[];
    subjectTypes: string[];
    pairwiseIdentifier(ctx: KoaContextWithOIDC, accountId: string, client: ClientInstance): Promise<string>;
    sectorIdentifierUriValidate(client: ClientInstance): boolean;
    conformIdTokenClaims: boolean;
    responseTypes: string[];
    rotateRefreshToken: boolean;
    allowOmittingSingleRegisteredRedirectUri: boolean;
    clockTolerance: number;
    clientBasedCORS(ctx: KoaContextWithOIDC, origin: string, client: ClientInstance): boolean;
    extraParams: Record<
      string,
      ((ctx: KoaContextWithOIDC, value: unknown, client: ClientInstance) => Promise<void>) | null
    >;
    pkce: { required(ctx: KoaContextWithOIDC, client: ClientInstance): boolean };
    ttl: Record<string, number>;
    routes: Record<string, string>;
    interactions: { url(ctx: KoaContextWithOIDC, interaction: InteractionInstance): Promise<string> };
    renderError(ctx: KoaContextWithOIDC, out: ErrorOut, error: Error): Promise<void>;
    features: {
      devInteractions: { enabled: boolean };
      clientCredentials: { enabled: boolean };
      userinfo: { enabled: boolean };
      rpInitiatedLogout: { enabled: boolean };
      revocation: { enabled: boolean };
      introspection: { enabled: boolean };
      claimsParameter: { enabled: boolean };
      resourceIndicators: {
        enabled: boolean;
        defaultResource(
          ctx: KoaContextWithOIDC,
          client: ClientInstance,
          oneOf?: string[],
        ): Promise<string | string[] | undefined>;
        useGrantedResource(ctx: KoaContextWithOIDC, model: unknown): Promise<boolean>;
        getResourceServerInfo(
          ctx: KoaContextWithOIDC,
          resource: string,
          client: ClientInstance,
        ): Promise<ResourceServerInfo>;
      };
    };
    formats: {
      customizers: {
        jwt(ctx: KoaContextWithOIDC, token: TokenInstance, jwt: JwtStructuredToken): Promise<void>;
      };
    };
    enabledJWA: Record<string, string[]>;
  }

  export class Provider {
    constructor(issuer: string, configuration: Partial<Configuration>);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    use(middleware: Middleware): this;
    on(event: string, listener: (ctx: KoaContextWithOIDC, err: Error) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionInstance>;
    interactionResult(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<string>;
    Grant: {
      new (init: { accountId: string; clientId: string }): GrantInstance;
      find(id: string): Promise<GrantInstance | undefined>;
    };
    Client: { find(id: string): Promise<ClientInstance | undefined> };
  }

  export interface OIDCProviderErrorInstance extends Error {
    error: string;
    error_description?: string;
    error_detail?: string;
    status: number;
    statusCode: number;
  }

  export const errors: {
    CustomOIDCProviderError: new (error: string, description: string) => OIDCProviderErrorInstance;
    InvalidTarget: new (description?: string) => OIDCProviderErrorInstance;
  };

  export default Provider;
}
