/**
 * @module console/client/dom
 * A tiny element builder: text always goes in as text nodes (never parsed as HTML), so nothing the API returns
 * can become markup or script.
 */

type Child = Node | string | number | false | null | undefined;
type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
}

/** A text field that browsers must not autofill or spell-check (keys, tokens, ids); `secret` masks it. */
export function plainInput(attrs: Attrs & { value?: string }, secret = false): HTMLInputElement {
  return h('input', {
    type: secret ? 'password' : 'text',
    autocomplete: 'off',
    spellcheck: 'false',
    ...attrs,
  });
}

let ids = 0;
/** A unique id for label/description wiring. */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });
const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1000],
];

/** "in 54 minutes" / "3 hours ago". */
export function fromNow(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const diff = Date.parse(iso) - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms || unit === 'second') return relative.format(Math.round(diff / ms), unit);
  }
  return '—';
}

export function exactTime(iso: string | undefined): string {
  return iso ? absolute.format(new Date(iso)) : '';
}

/** A `<time>` showing the relative time, the exact one on hover and to screen readers via `datetime`. */
export function timeEl(iso: string | undefined): HTMLElement {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: exactTime(iso) }, fromNow(iso));
}
