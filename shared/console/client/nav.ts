/**
 * @module console/client/nav
 * Routing and the few page-wide effects every view uses: replace the content and move focus, navigate,
 * announce a short message.
 */

let renderer: () => Promise<void> = () => Promise.resolve();

export function setRenderer(render: () => Promise<void>): void {
  renderer = render;
}

export type Route = { view: 'list' } | { view: 'new' } | { view: 'details' | 'edit'; name: string };

export function parseRoute(hash: string): Route {
  const m = /^#\/c\/([a-z0-9-]{1,63})(\/edit)?$/.exec(hash);
  if (m?.[1]) return { view: m[2] ? 'edit' : 'details', name: m[1] };
  if (hash === '#/new') return { view: 'new' };
  return { view: 'list' };
}

export function go(hash: string): void {
  if (location.hash === hash) void renderer();
  else location.hash = hash;
}

/** Replaces the main content and moves focus to its heading, so keyboard and screen-reader users follow. */
export function show(content: Node[], focusHeading = true): void {
  const main = document.getElementById('main') as HTMLElement;
  main.replaceChildren(...content);
  if (focusHeading) (main.querySelector('h1') ?? main).focus();
}

/** A short message in the polite live region (copied, refreshed, deleted). */
export function toast(message: string): void {
  const box = document.getElementById('toast');
  if (!box) return;
  box.textContent = message;
  box.classList.add('on');
  window.setTimeout(() => {
    if (box.textContent === message) {
      box.classList.remove('on');
      box.textContent = '';
    }
  }, 4000);
}
