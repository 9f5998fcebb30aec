/**
 * @module hostFilter
 * Which Host headers the dev host answers. Without a function key anyone who can make a browser send requests
 * to 127.0.0.1 could otherwise drive the API: a page on an attacker's domain that re-resolves to 127.0.0.1
 * (DNS rebinding) is same-origin with it. ASP.NET Core's host filtering (`AllowedHosts`) answers 400 for a Host
 * outside the list; the dev host does the same for anything but loopback names and `DEVHOST_ALLOWED_HOSTS`.
 */

const LOOPBACK = ['localhost', '127.0.0.1', '::1'];

/** Lower-cased host names (no port) from a comma-separated list; `*` allows any host. */
export function parseAllowedHosts(raw: string | undefined): readonly string[] {
  const extra = (raw ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  return [...LOOPBACK, ...extra];
}

/** The host name of a Host header value (`[::1]:7071` → `::1`, `Example.com:80` → `example.com`). */
export function hostName(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end === -1 ? value : value.slice(1, end);
  }
  const colon = value.lastIndexOf(':');
  return colon === -1 ? value : value.slice(0, colon);
}

export function isAllowedHost(header: string, allowed: readonly string[]): boolean {
  if (allowed.includes('*')) return true;
  const name = hostName(header).replace(/\.$/, '');
  return allowed.includes(name);
}
