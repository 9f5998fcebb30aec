/**
 * A tiny cookie-keeping HTTP client for end-to-end tests that drive the connect flow without a browser:
 * follows redirects by hand (so each hop can be inspected) and keeps cookies per origin.
 */

export interface Hop {
  url: string;
  status: number;
  location?: string;
  setCookies: string[];
}

export class CookieClient {
  readonly jar = new Map<string, Map<string, string>>();
  readonly hops: Hop[] = [];

  cookieHeader(url: string): string | undefined {
    const cookies = this.jar.get(new URL(url).host);
    if (!cookies || cookies.size === 0) return undefined;
    return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  setCookie(url: string, name: string, value: string): void {
    const host = new URL(url).host;
    const cookies = this.jar.get(host) ?? new Map<string, string>();
    cookies.set(name, value);
    this.jar.set(host, cookies);
  }

  #store(url: string, setCookies: string[]): void {
    const host = new URL(url).host;
    const cookies = this.jar.get(host) ?? new Map<string, string>();
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
    }
    this.jar.set(host, cookies);
  }

  /** One request, no redirect following. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    const setCookies = res.headers.getSetCookie();
    this.#store(url, setCookies);
    const hop: Hop = { url, status: res.status, setCookies };
    const location = res.headers.get('location');
    if (location) hop.location = new URL(location, url).href;
    this.hops.push(hop);
    return res;
  }

  /** Follows redirects (GET after 30x) until a non-redirect answer; returns it and its final URL. */
  async follow(
    url: string,
    init: RequestInit = {},
    maxHops = 10,
  ): Promise<{ response: Response; url: string }> {
    let current = url;
    let currentInit = init;
    for (let i = 0; i < maxHops; i++) {
      const res = await this.request(current, currentInit);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        current = new URL(location, current).href;
        currentInit = {};
        continue;
      }
      return { response: res, url: current };
    }
    throw new Error('too many redirects');
  }
}

/** Finds the first <form> in an HTML page and returns its absolute action and hidden inputs. */
export function readForm(
  html: string,
  pageUrl: string,
  index = 0,
): { action: string; method: string; fields: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
  const form = forms[index];
  if (!form) throw new Error('no form on the page');
  const attrs = form[1] ?? '';
  const action = /action="([^"]*)"/i.exec(attrs)?.[1] ?? pageUrl;
  const method = /method="([^"]*)"/i.exec(attrs)?.[1] ?? 'get';
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
    const a = input[1] ?? '';
    const name = /name="([^"]*)"/i.exec(a)?.[1];
    const type = /type="([^"]*)"/i.exec(a)?.[1] ?? 'text';
    const value = /value="([^"]*)"/i.exec(a)?.[1] ?? '';
    if (name && type === 'hidden') fields[name] = decodeEntities(value);
  }
  return { action: new URL(decodeEntities(action), pageUrl).href, method: method.toLowerCase(), fields };
}

function decodeEntities(s: string): string {
  return s
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}
