/**
 * @module console/client/app
 * The console's entry point (bundled by tools/build.ts into dist/console/app.js): reads the page's settings,
 * signs the admin in, then routes between the list, a connection's details and the create/edit form. Routes live
 * in the URL fragment (`#/c/sales-mailbox`) and carry connection names only, never a credential.
 */
import { h } from './dom.ts';
import { renderDetails } from './details.ts';
import { renderList } from './list.ts';
import { initEntra, renderSession, renderSignIn, type PageSettings } from './session.ts';
import { parseRoute, setRenderer, show } from './nav.ts';
import { state } from './state.ts';

const root = document.documentElement;
const settings: PageSettings = {
  authMode: root.dataset.authMode === 'entra' ? 'entra' : 'function_key',
  apiBase: root.dataset.apiBase ?? '/api',
  ...(root.dataset.entraClientId && root.dataset.entraAuthority && root.dataset.entraScope
    ? {
        entra: {
          clientId: root.dataset.entraClientId,
          authority: root.dataset.entraAuthority,
          scope: root.dataset.entraScope,
        },
      }
    : {}),
};

let stop: (() => void) | undefined;
let rendered = '';

async function render(): Promise<void> {
  stop?.();
  stop = undefined;
  renderSession(settings, () => {
    rendered = 'signed-out';
    void render();
  });
  if (!state.api) {
    // On first load focus stays at the top of the page (skip link first); later, the heading takes it.
    const first = rendered === '';
    rendered = 'signin';
    show(
      renderSignIn(settings, () => void render()),
      !first,
    );
    return;
  }
  const route = parseRoute(location.hash);
  const key = JSON.stringify(route);
  const focus = key !== rendered;
  rendered = key;
  try {
    switch (route.view) {
      case 'list':
        stop = await renderList(focus);
        break;
      case 'details':
        stop = await renderDetails(route.name, focus);
        break;
      case 'new':
      case 'edit': {
        // The form validates with the API's own zod schemas; zod is large, so it loads with the form only.
        const { renderForm } = await import('./form.ts');
        await renderForm(route.view === 'edit' ? route.name : undefined, focus);
        break;
      }
    }
  } catch (err) {
    show([
      h('h1', { tabindex: '-1' }, 'Something went wrong'),
      h('p', { class: 'error-text' }, err instanceof Error ? err.message : 'Unexpected error.'),
      h('p', {}, h('a', { href: '#/' }, 'Back to all connections')),
    ]);
  }
}

setRenderer(render);
window.addEventListener('hashchange', () => void render());
initEntra(settings, `${settings.apiBase}/console`)
  .catch(() => undefined)
  .finally(() => void render());
