/**
 * @module functionKit
 * The wrapper every HTTP function uses: a per-invocation logger (lines written through the host's
 * InvocationContext, broker lines included), and one mapping of any thrown error to a
 * response (problem+json for API callers, an HTML page for people in the connect flow).
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { isBrokerError } from './errors.ts';
import { problemResponse } from './http.ts';
import { type Logger, runInInvocation } from './log.ts';
import { errorPageContent, pageResponse } from './pages.ts';

export type Handler = (request: HttpRequest, log: Logger) => Promise<HttpResponseInit>;

export function apiHandler(name: string, handler: Handler) {
  return (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    runInInvocation(context, { function: name }, async (log) => {
      try {
        return await handler(request, log);
      } catch (err) {
        return problemResponse(err, log);
      }
    });
}

/** For routes a browser opens: errors become a readable page with the same status and code. */
export function pageHandler(
  name: string,
  handler: Handler,
  options: {
    /** Cookies to set on an error answer (e.g. clearing the login cookie), fixed or per request. */
    errorCookies?: HttpResponseInit['cookies'] | ((request: HttpRequest) => HttpResponseInit['cookies']);
  } = {},
) {
  return (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    runInInvocation(context, { function: name }, async (log) => {
      try {
        return await handler(request, log);
      } catch (err) {
        const problem = problemResponse(err, log);
        const cookies =
          typeof options.errorCookies === 'function' ? options.errorCookies(request) : options.errorCookies;
        if (cookies) problem.cookies = cookies;
        if (!prefersHtml(request)) return problem;
        const code = isBrokerError(err) ? err.code : 'internal_error';
        const status = isBrokerError(err) ? err.status : 500;
        return pageResponse(
          status,
          errorPageContent(code, context.invocationId),
          { 'x-broker-error': code },
          cookies,
        );
      }
    });
}

function prefersHtml(request: HttpRequest): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept === '' || /text\/html|\*\/\*/.test(accept);
}
