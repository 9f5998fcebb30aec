/**
 * @module cookies
 * RPC cookies → `Set-Cookie` exactly as the host writes them in non-stream mode: ASP.NET Core
 * `Response.Cookies.Append(name, value, CookieOptions)` (HOST `GrpcMessageExtensionUtilities.RpcHttpCookieConverter`).
 * The value is `Uri.EscapeDataString`-encoded, the name is not; `path=/` is the CookieOptions default; attributes
 * are lower-case in SetCookieHeaderValue order: expires, max-age, domain, path, secure, samesite, httponly.
 * SameSite: RPC `none` = unspecified (no attribute), `explicitNone` = `samesite=none`.
 */
import type { RpcHttpCookie } from './rpcTypes.ts';

/** .NET `Uri.EscapeDataString`: everything except RFC 3986 unreserved characters, upper-case hex. */
export function escapeDataString(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

export function serializeCookie(cookie: RpcHttpCookie): string {
  const parts = [`${cookie.name ?? ''}=${escapeDataString(cookie.value ?? '')}`];
  const seconds = cookie.expires?.value?.seconds;
  if (typeof seconds === 'number') parts.push(`expires=${new Date(seconds * 1000).toUTCString()}`);
  const maxAge = cookie.maxAge?.value;
  if (typeof maxAge === 'number') parts.push(`max-age=${Math.trunc(maxAge)}`);
  const domain = cookie.domain?.value;
  if (typeof domain === 'string') parts.push(`domain=${domain}`);
  const path = cookie.path?.value;
  parts.push(`path=${typeof path === 'string' ? path : '/'}`);
  if (cookie.secure?.value === true) parts.push('secure');
  const sameSite = cookie.sameSite;
  if (sameSite === 'lax' || sameSite === 'strict') parts.push(`samesite=${sameSite}`);
  else if (sameSite === 'explicitNone') parts.push('samesite=none');
  if (cookie.httpOnly?.value === true) parts.push('httponly');
  return parts.join('; ');
}
