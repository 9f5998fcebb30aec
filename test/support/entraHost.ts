/**
 * The broker on the dev host in Entra mode (`BROKER_AUTH_MODE=entra`) with a demo IdP that also issues
 * client-credentials tokens to the given caller apps, with their app roles — what the Entra-caller suites share.
 */
import { randomBytes } from 'node:crypto';
import { startDemoIdp, type DemoIdp } from '../../tools/demo-idp/server.ts';
import { type BrokerHost, CLIENT_ID, freePort, startBrokerHost } from './brokerHost.ts';

/** The broker API's Application ID URI the demo IdP issues caller tokens for. */
export const BROKER_API = 'api://token-broker';

export interface CallerApp {
  clientId: string;
  clientSecret: string;
  roles: readonly string[];
}

export async function startEntraBrokerHost(
  callers: readonly CallerApp[],
): Promise<{ idp: DemoIdp; host: BrokerHost }> {
  const port = await freePort();
  const brokerSecret = randomBytes(24).toString('base64url');
  const idp = await startDemoIdp({
    quiet: true,
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: brokerSecret,
        redirectUris: [`http://localhost:${port}/api/callback`],
      },
      ...callers.map((c) => ({
        clientId: c.clientId,
        clientSecret: c.clientSecret,
        redirectUris: [],
        roles: [...c.roles],
        grantTypes: ['client_credentials'],
      })),
    ],
  });
  const host = await startBrokerHost({
    port,
    sharedIdp: { idp, clientSecret: brokerSecret },
    env: {
      BROKER_AUTH_MODE: 'entra',
      BROKER_AUTH_ISSUER: idp.issuer,
      BROKER_AUTH_JWKS_URL: idp.endpoints().jwks,
      BROKER_AUTH_AUDIENCE: BROKER_API,
    },
  });
  return { idp, host };
}
