import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { STATE_COOKIE_NAME } from '../shared/broker/stateCookie.ts';
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

const clearCookie = [
  {
    name: STATE_COOKIE_NAME,
    value: '',
    maxAge: 0,
    path: '/',
    secure: true,
    httpOnly: true,
    sameSite: 'Lax' as const,
  },
];

/** Where the provider sends the browser back: verifies, redeems the code, stores the tokens, shows a page. */
export const callback = pageHandler(
  'callback',
  async (request: HttpRequest) => {
    parseQuery(request, query);
    const { broker } = await getRuntime();
    const result = await broker.completeCallback(
      new URL(request.url).searchParams,
      readCookie(request, STATE_COOKIE_NAME),
    );
    return pageResponse(200, connectedPage(result.connection, result.username), {}, clearCookie);
  },
  { errorCookies: clearCookie },
);

app.http('callback', { methods: ['GET'], route: 'callback', authLevel: 'anonymous', handler: callback });
