import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import {
  CONSENT_MAX_AGE_SECONDS,
  checkConsent,
  consentCookieName,
  newConsent,
} from '../shared/broker/consent.ts';
import { BrokerError } from '../shared/errors.ts';
import { pageHandler } from '../shared/functionKit.ts';
import { parseFormBody, parseParams, parseQuery, readCookie } from '../shared/http.ts';
import { consentPage, consentPageHeaders, pageResponse } from '../shared/pages.ts';
import { getRuntime } from '../shared/runtime.ts';
import { connectConsentForm as form, connectionParams, connectLinkValue } from '../shared/schemas.ts';

const query = z.object({ link: connectLinkValue }).strict();

const cookieBase = { path: '/', secure: true, httpOnly: true } as const;

/**
 * GET: a valid link shows who asks to connect which account to which connection with which permissions, and a
 * continue button; nothing is sent to the provider yet (forced-connect defence). POST (that button): checks the
 * page's CSRF token against this browser's cookie, then sets the sealed login cookie and sends the browser to
 * the provider's sign-in, with an account picker.
 */
export const connect = pageHandler('connect', async (request: HttpRequest) => {
  const { connection } = parseParams(request, connectionParams);
  const { broker, config } = await getRuntime();
  if (request.method === 'POST') {
    parseQuery(request, z.object({}).strict());
    sameOriginPost(request, config.publicBaseUrl);
    const body = await parseFormBody(request, form);
    const name = consentCookieName(body.link);
    checkConsent(broker.keyring, body.link, readCookie(request, name), body.consent, broker.now());
    const start = await broker.beginConnect(connection, body.link);
    return {
      status: 303,
      headers: { location: start.redirectUrl, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
      cookies: [
        {
          ...cookieBase,
          name: start.cookie.name,
          value: start.cookie.value,
          maxAge: start.cookie.maxAgeSeconds,
          // Lax: the provider's redirect back to the callback is a cross-site top-level navigation.
          sameSite: 'Lax',
        },
        // The page's continue token is spent.
        { ...cookieBase, name, value: '', maxAge: 0, sameSite: 'Strict' },
      ],
    };
  }
  const { link: value } = parseQuery(request, query);
  const facts = await broker.describeConnect(connection, value);
  const consent = newConsent(broker.keyring, value, broker.now());
  const requestedBy = `Token broker at ${new URL(config.publicBaseUrl).host}`;
  return pageResponse(
    200,
    consentPage(facts, requestedBy, [
      ['link', value],
      ['consent', consent.token],
    ]),
    consentPageHeaders(facts.authorizeOrigin),
    [
      {
        ...cookieBase,
        name: consentCookieName(value),
        value: consent.cookieValue,
        maxAge: CONSENT_MAX_AGE_SECONDS,
        // Strict: a cross-site page's POST never carries it, so it cannot press the button for the person.
        sameSite: 'Strict',
      },
    ],
  );
});

/** A POST whose Origin names another site, or that the browser marks cross-site, is refused before anything is read. */
function sameOriginPost(request: HttpRequest, publicBaseUrl: string): void {
  const origin = request.headers.get('origin');
  const site = request.headers.get('sec-fetch-site');
  // The page is served with Referrer-Policy: no-referrer, under which browsers send `Origin: null` even for a
  // same-origin form post; Sec-Fetch-Site (and the Strict cookie) still tell a cross-site one apart.
  const foreign = origin !== null && origin !== 'null' && origin !== new URL(publicBaseUrl).origin;
  if (foreign || site === 'cross-site') {
    throw new BrokerError(
      'invalid_state',
      'This page was not opened in this browser, or it is too old. Open the connect link again.',
      { detail: 'cross-site consent post' },
    );
  }
}

app.http('connect', {
  methods: ['GET', 'POST'],
  route: 'connect/{connection}',
  authLevel: 'anonymous',
  handler: connect,
});
