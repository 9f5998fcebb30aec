/**
 * @module demo-idp/interactions
 * The sign-in and consent steps of the authorization flow. Plain HTML forms posting
 * `application/x-www-form-urlencoded` to stable paths, so a cookie-keeping HTTP client can drive them too:
 *
 *   GET  /{tenant}/interaction/{uid}           → sign-in or consent page (needs the interaction cookie)
 *   POST /{tenant}/interaction/{uid}/login     login=<username>&password=<password>   → 303 (resume)
 *   POST /{tenant}/interaction/{uid}/consent   decision=allow|deny                    → 303 (resume)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InteractionInstance, Provider } from 'oidc-provider';
import { passwordMatches } from './directory.ts';
import { isFormEncoded, readBody, redirect, sendHtml } from './http.ts';
import { OIDC_SCOPES, type TenantInfo } from './microsoft.ts';
import { consentPage, errorPage, loginPage, newNonce, pageSecurityHeaders } from './pages.ts';
import { PARAM_AUTO_CONSENT, type Runtime } from './provider.ts';

export type InteractionAction = 'show' | 'login' | 'consent';

export interface InteractionContext {
  rt: Runtime;
  provider: Provider;
  tenant: TenantInfo;
  segment: string;
  showDemoAccounts: boolean;
}

const FORM_LIMIT_BYTES = 16 * 1024;

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

export async function handleInteraction(
  req: IncomingMessage,
  res: ServerResponse,
  ic: InteractionContext,
  uid: string,
  action: InteractionAction,
): Promise<void> {
  const nonce = newNonce();
  const fail = (status: number, message: string, code?: string) =>
    sendHtml(
      res,
      status,
      errorPage({ nonce, title: 'Sign-in problem', message, ...(code ? { code } : {}) }),
      pageSecurityHeaders(nonce),
    );

  let interaction: InteractionInstance;
  try {
    interaction = await ic.provider.interactionDetails(req, res);
  } catch {
    fail(
      400,
      'Your sign-in session expired or this browser blocked its cookies. Start again from the app.',
      'session_expired',
    );
    return;
  }
  if (interaction.uid !== uid) {
    fail(
      400,
      'This sign-in page does not belong to the current sign-in. Start again from the app.',
      'interaction_mismatch',
    );
    return;
  }

  const clientId = str(interaction.params.client_id);
  const client = ic.rt.clients.get(clientId);
  const clientName = client?.name ?? clientId;
  const redirectOrigins = (client?.config.redirectUris ?? []).flatMap((u) => URL.parse(u)?.origin ?? []);
  const headers = pageSecurityHeaders(nonce, redirectOrigins);
  const base = `/${ic.segment}/interaction/${uid}`;
  const prompt = interaction.prompt.name;

  const showLogin = (status: number, error?: string, username?: string) =>
    sendHtml(
      res,
      status,
      loginPage({
        nonce,
        action: `${base}/login`,
        clientName,
        tenantName: ic.tenant.displayName,
        ...(username !== undefined ? { username } : {}),
        ...(error ? { error } : {}),
        ...(ic.showDemoAccounts
          ? { demoAccounts: ic.rt.users.filter((u) => u.tenantId === ic.tenant.tenantId) }
          : {}),
      }),
      headers,
    );

  if (action === 'show') {
    if (prompt === 'login') {
      showLogin(200, undefined, str(interaction.params.login_hint));
      return;
    }
    if (prompt === 'consent') {
      // The front adds prompt=consent so oidc-provider keeps offline_access (OIDC requires it, Microsoft does
      // not); when that was the only reason, an already-consented app goes straight back, like at Microsoft.
      const onlyInjected =
        interaction.params[PARAM_AUTO_CONSENT] === '1' &&
        interaction.grantId !== undefined &&
        interaction.prompt.reasons.every((r) => r === 'consent_prompt');
      if (onlyInjected) {
        const returnTo = await ic.provider.interactionResult(req, res, {
          consent: { grantId: interaction.grantId },
        });
        redirect(res, returnTo);
        return;
      }
      const username = ic.rt.users.find((u) => u.objectId === interaction.session?.accountId)?.username ?? '';
      sendHtml(
        res,
        200,
        consentPage({
          nonce,
          action: `${base}/consent`,
          clientName,
          username,
          tenantName: ic.tenant.displayName,
          permissions: describePermissions(ic.rt, str(interaction.params.scope)),
        }),
        headers,
      );
      return;
    }
    fail(400, `Unsupported sign-in step '${prompt}'.`, 'unsupported_prompt');
    return;
  }

  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    fail(405, 'Use the form on the sign-in page.', 'method_not_allowed');
    return;
  }
  if (!isFormEncoded(req)) {
    fail(415, 'The form must be sent as application/x-www-form-urlencoded.', 'unsupported_media_type');
    return;
  }
  let form: URLSearchParams;
  try {
    form = new URLSearchParams(await readBody(req, FORM_LIMIT_BYTES));
  } catch {
    fail(413, 'The form is too large.', 'payload_too_large');
    return;
  }

  if (action === 'login') {
    if (prompt !== 'login') {
      fail(
        409,
        'You are already signed in for this request. Go back to the app and start again.',
        'step_mismatch',
      );
      return;
    }
    const username = (form.get('login') ?? '').trim().toLowerCase();
    const user = ic.rt.users.find((u) => u.username === username);
    if (!user || !passwordMatches(user, form.get('password') ?? '')) {
      showLogin(400, 'Your account or password is incorrect.', username);
      return;
    }
    if (user.tenantId !== ic.tenant.tenantId) {
      showLogin(
        400,
        `The account ${username} is not in the ${ic.tenant.displayName} directory. Use an account from this organization.`,
        username,
      );
      return;
    }
    const returnTo = await ic.provider.interactionResult(
      req,
      res,
      { login: { accountId: user.objectId } },
      { mergeWithLastSubmission: false },
    );
    redirect(res, returnTo);
    return;
  }

  if (prompt !== 'consent') {
    fail(
      409,
      'There is no consent pending for this request. Go back to the app and start again.',
      'step_mismatch',
    );
    return;
  }
  const decision = form.get('decision');
  if (decision === 'deny') {
    const returnTo = await ic.provider.interactionResult(
      req,
      res,
      {
        error: 'access_denied',
        error_description: 'AADSTS65004: User declined to consent to access the app.',
      },
      { mergeWithLastSubmission: false },
    );
    redirect(res, returnTo);
    return;
  }
  if (decision !== 'allow') {
    fail(400, "Choose 'Allow' or 'Deny'.", 'invalid_decision');
    return;
  }
  const accountId = interaction.session?.accountId ?? '';
  const existing = interaction.grantId ? await ic.provider.Grant.find(interaction.grantId) : undefined;
  const grant = existing ?? new ic.provider.Grant({ accountId, clientId });
  const { details } = interaction.prompt;
  if (details.missingOIDCScope?.length) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  const returnTo = await ic.provider.interactionResult(
    req,
    res,
    { consent: { grantId } },
    { mergeWithLastSubmission: true },
  );
  redirect(res, returnTo);
}

/** Consent-page lines: resource permissions first, then sign-in/profile, then "stay signed in". */
export function describePermissions(rt: Runtime, scope: string): { text: string; scopes: string[] }[] {
  const scopes = [...new Set(scope.split(' ').filter(Boolean))];
  const lines = scopes
    .filter((s) => !OIDC_SCOPES.has(s))
    .map((s) => ({ text: rt.resources.describe(s), scopes: [s] }));
  const has = (s: string) => scopes.includes(s);
  if (has('openid') || has('profile')) {
    const which = ['openid', 'profile'].filter(has);
    lines.push({
      text:
        which.length === 2
          ? 'Sign you in and read your basic profile'
          : rt.resources.describe(which[0] ?? 'openid'),
      scopes: which,
    });
  }
  if (has('email')) lines.push({ text: rt.resources.describe('email'), scopes: ['email'] });
  if (has('offline_access'))
    lines.push({ text: rt.resources.describe('offline_access'), scopes: ['offline_access'] });
  return lines;
}
