/**
 * @module retryAfter
 * How long a server asked us to wait, from `retry-after-ms` / `x-ms-retry-after-ms` (Azure SDK conventions,
 * milliseconds) or `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date). One parser for the token
 * endpoint, Key Vault and notification senders.
 */

/** Milliseconds to wait, or undefined when no header says so (or none can be read). */
export function retryAfterMs(
  header: (name: string) => string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const value = header(name)?.trim();
    if (value && /^\d+$/.test(value)) return Number(value);
  }
  const value = header('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP-date names its day and month; without letters Date.parse would take "-3" as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
