/**
 * What a browser does with a connect link since the consent page (docs/security.md, "Forced connect"): GET the
 * link (a page and a SameSite=Strict consent cookie), then press "Continue" — a same-origin form POST with the
 * page's hidden fields and that cookie — which answers 303 to the provider with the login cookie.
 */
import assert from 'node:assert/strict';

export interface ConsentForm {
  /** The consent page as received. */
  page: Response;
  html: string;
  /** `name=value` of the consent cookie the page set. */
  cookie: string;
  /** The page's hidden fields (link, consent). */
  fields: Record<string, string>;
  /** Where the form posts (the link's own address, without its query). */
  action: string;
}

/** GETs the link and reads the consent page's form and cookie. */
export async function openConsentPage(
  link: string,
  headers: Record<string, string> = {},
): Promise<ConsentForm> {
  const page = await fetch(link, { redirect: 'manual', headers: { accept: 'text/html', ...headers } });
  const html = await page.text();
  assert.equal(page.status, 200, html.slice(0, 300));
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    fields[m[1] ?? ''] = decodeEntities(m[2] ?? '');
  const cookie = (page.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
  const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1] ?? '';
  return { page, html, cookie, fields, action: new URL(decodeEntities(action), link).href };
}

/** Presses "Continue": the form POST a browser sends from the page (same origin, with the consent cookie). */
export function pressContinue(
  form: ConsentForm,
  overrides: {
    cookie?: string | null;
    fields?: Record<string, string>;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  const cookie = overrides.cookie === undefined ? form.cookie : overrides.cookie;
  return fetch(form.action, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
      origin: new URL(form.action).origin,
      ...(cookie ? { cookie } : {}),
      ...overrides.headers,
    },
    body: new URLSearchParams({ ...form.fields, ...overrides.fields }).toString(),
  });
}

/** GET + Continue: the answer that sends the browser to the provider (303) with the login cookie. */
export async function startConnect(link: string): Promise<Response> {
  return pressContinue(await openConsentPage(link));
}

function decodeEntities(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) =>
    e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : "'",
  );
}
