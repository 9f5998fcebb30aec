/**
 * @module oauth/transport
 * Outbound HTTP for provider calls: one undici Agent per process (keep-alive, bounded connect/headers/body
 * timeouts) and a fetch function shaped for oauth4webapi's and jose's `customFetch` hooks.
 */
import { Agent, fetch as undiciFetch } from 'undici';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface TransportOptions {
  timeoutMs: number;
}

export function createTransport({ timeoutMs }: TransportOptions): {
  fetch: FetchLike;
  close(): Promise<void>;
} {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    connectTimeout: Math.min(timeoutMs, 10_000),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connections: 64,
  });
  const fetchWithAgent: FetchLike = async (url, init) => {
    const signal = init.signal ?? AbortSignal.timeout(timeoutMs);
    // undici's Response is structurally the WHATWG Response oauth4webapi and jose expect.
    const response = await undiciFetch(url, {
      method: init.method,
      headers: init.headers as Record<string, string>,
      body: init.body as string | URLSearchParams | undefined,
      redirect: 'manual',
      signal,
      dispatcher: agent,
    });
    return response as unknown as Response;
  };
  return { fetch: fetchWithAgent, close: () => agent.close() };
}
