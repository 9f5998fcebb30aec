import { app, type HttpResponseInit } from '@azure/functions';
import { BROKER_VERSION } from '../shared/version.ts';

/** Liveness only: no connection names, no configuration, nothing secret. */
export function health(): HttpResponseInit {
  return {
    status: 200,
    jsonBody: { status: 'ok', version: BROKER_VERSION },
    headers: { 'cache-control': 'no-store' },
  };
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
