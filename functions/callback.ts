import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { stateCookieName } from '../shared/broker/stateCookie.ts';
import { pageHandler } from '../shared/functionKit.ts';
import { parseQuery, readCookie } from '../shared/http.ts';
import { connectedPage, pageResponse } from '../shared/pages.ts';
import { getRuntime } from '../shared/runtime.ts';

const value = z.string().min(1).max(4096);
// What Microsoft and RFC 6749/9207 servers send back to the redirect URI; anything else is refused.
const query = z
  .object({
    code: value.optional(),
    state: value,
    error: z.string().max(128).optional(),
    error_description: z.string().max(2048).optional(),
    error_uri: z.string().max(2048).optional(),
    error_subcode: z.string().max(128).optional(),
    iss: z.string().max(2048).optional(),
    session_state: z.string().max(512).optional(),
    client_info: z.string().max(4096).optional(),
  })
  .strict()
  .refine((q) => q.code !== undefined || q.error !== undefined, 'code or error is required');

/** Clears this sign-in's login cookie (named after its state), on success and on failure alike. */
function clearCookie(request: HttpRequest): HttpResponseInit['cookies'] {
  const state = new URL(request.url).searchParams.get('state');
  if (!state) return [];
  return [
    {
      name: stateCookieName(state),
      value: '',
      maxAge: 0,
      path: '/',
      secure: true,
      httpOnly: true,
      sameSite: 'Lax' as const,
    },
  ];
}

/** Where the provider sends the browser back: verifies, redeems the code, stores the tokens, shows a page. */
export const callback = pageHandler(
  'callback',
  async (request: HttpRequest) => {
    const { state } = parseQuery(request, query);
    const { broker } = await getRuntime();
    const result = await broker.completeCallback(
      new URL(request.url).searchParams,
      readCookie(request, stateCookieName(state)),
    );
    return pageResponse(200, connectedPage(result.connection, result.username), {}, clearCookie(request));
  },
  { errorCookies: clearCookie },
);

app.http('callback', { methods: ['GET'], route: 'callback', authLevel: 'anonymous', handler: callback });
