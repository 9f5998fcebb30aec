import { app, type HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { pageHandler } from '../shared/functionKit.ts';
import { parseParams, parseQuery } from '../shared/http.ts';
import { getRuntime } from '../shared/runtime.ts';
import { connectionParams } from '../shared/schemas.ts';

const query = z.object({ link: z.string().min(10).max(2048) }).strict();

/** Opens a signed connect link: sets the sealed login cookie and sends the browser to the provider. */
export const connect = pageHandler('connect', async (request: HttpRequest) => {
  const { connection } = parseParams(request, connectionParams);
  const { link } = parseQuery(request, query);
  const { broker } = await getRuntime();
  const start = await broker.beginConnect(connection, link);
  return {
    status: 302,
    headers: { location: start.redirectUrl, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
    cookies: [
      {
        name: start.cookie.name,
        value: start.cookie.value,
        maxAge: start.cookie.maxAgeSeconds,
        path: '/',
        secure: true,
        httpOnly: true,
        sameSite: 'Lax',
      },
    ],
  };
});

app.http('connect', {
  methods: ['GET'],
  route: 'connect/{connection}',
  authLevel: 'anonymous',
  handler: connect,
});
