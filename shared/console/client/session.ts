/**
 * @module console/client/session
 * Signing in to the console. Function-key mode: the admin pastes a key; it stays in this tab's memory (the
 * ManageApi closure) until the tab is closed, reloaded or "Sign out" is pressed. Entra mode: additionally signs
 * in with Microsoft through MSAL Browser (loaded only then) and sends its access token as a bearer.
 */
import { ApiError, ManageApi } from './api.ts';
import { h, plainInput, uid } from './dom.ts';
import { forgetSession, state } from './state.ts';

export interface PageSettings {
  authMode: 'function_key' | 'entra';
  apiBase: string;
  entra?: { clientId: string; authority: string; scope: string };
}

import type { EntraSession } from './entra.ts';

let entra: EntraSession | undefined;

/** Entra mode: loads MSAL Browser and finishes a sign-in that just came back from Microsoft. */
export async function initEntra(settings: PageSettings, consolePath: string): Promise<void> {
  if (settings.authMode !== 'entra' || !settings.entra) return;
  const { startEntra } = await import('./entra.ts');
  entra = await startEntra(settings.entra, consolePath);
}

export function renderSession(settings: PageSettings, onSignOut: () => void): void {
  const box = document.getElementById('session');
  if (!box) return;
  if (!state.api) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    h('span', { class: 'who' }, state.who),
    h(
      'button',
      {
        type: 'button',
        id: 'sign-out',
        class: 'quiet',
        onclick: () => {
          forgetSession();
          if (settings.authMode === 'entra' && entra) void entra.signOut();
          onSignOut();
        },
      },
      'Sign out',
    ),
  );
}

export function renderSignIn(settings: PageSettings, onSignedIn: () => void): Node[] {
  const keyId = uid('key');
  const hintId = uid('hint');
  const errorId = uid('err');
  const input = plainInput(
    { id: keyId, name: 'function-key', required: true, 'aria-describedby': hintId },
    true,
  );
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  const entraNote =
    settings.authMode === 'entra'
      ? h(
          'p',
          {},
          'This broker also requires a Microsoft sign-in with the ',
          h('code', {}, 'Connections.Manage'),
          ' role. ',
          !settings.entra || !entra
            ? 'The console is not set up for it: set BROKER_CONSOLE_CLIENT_ID (see docs/console.md).'
            : entra.account
              ? `Signed in with Microsoft as ${entra.account}.`
              : 'Sign in with Microsoft first.',
        )
      : null;
  const microsoft =
    settings.authMode === 'entra' && entra && !entra.account
      ? h(
          'button',
          {
            type: 'button',
            id: 'sign-in-microsoft',
            class: 'primary',
            onclick: () => {
              entra?.signIn().then(onSignedIn, (err: unknown) => {
                error.textContent = `Microsoft sign-in failed: ${err instanceof Error ? err.message : 'unknown error'}`;
                error.hidden = false;
              });
            },
          },
          'Sign in with Microsoft',
        )
      : null;
  const submit = h('button', { type: 'submit', id: 'use-key', class: 'primary' }, 'Open the console');
  const form = h(
    'form',
    {
      class: 'card narrow',
      novalidate: true,
      onsubmit: (event: Event) => {
        event.preventDefault();
        void signIn();
      },
    },
    h('label', { for: keyId }, 'Function key'),
    input,
    h(
      'p',
      { id: hintId, class: 'hint' },
      'A key that opens the manage API: in Azure the host key (',
      h('code', {}, 'az functionapp keys list'),
      '), locally the key ',
      h('code', {}, 'npm start'),
      ' prints. It is kept in this tab’s memory only — reloading or closing the tab forgets it.',
    ),
    error,
    entraNote,
    microsoft,
    submit,
  );

  async function signIn(): Promise<void> {
    const key = input.value.trim();
    const fail = (message: string) => {
      error.textContent = message;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', `${errorId} ${hintId}`);
      input.focus();
    };
    if (!key) return fail('Paste a function key.');
    submit.disabled = true;
    try {
      let bearer: (() => Promise<string>) | undefined;
      if (settings.authMode === 'entra') {
        if (!entra) return fail('Microsoft sign-in is not configured for this console.');
        if (!entra.account) return fail('Sign in with Microsoft first.');
        bearer = entra.token.bind(entra);
      }
      const api = new ManageApi(settings.apiBase, { functionKey: key, ...(bearer ? { bearer } : {}) });
      const [list, providers] = await Promise.all([api.list(), api.providers()]);
      state.api = api;
      state.summaries = list.connections;
      state.listedAt = Date.now();
      state.providers = providers.providers;
      state.presets = providers.presets ?? [];
      state.who = entra?.account ? `Signed in as ${entra.account}` : 'Signed in with a function key';
      input.value = '';
      onSignedIn();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        fail(
          err.code === 'insufficient_scope'
            ? 'Your account lacks the Connections.Manage role.'
            : 'The key was not accepted. Check that it opens the manage API (a host key).',
        );
      } else fail(err instanceof Error ? err.message : 'Sign-in failed.');
    } finally {
      submit.disabled = false;
    }
  }

  return [
    h('h1', { tabindex: '-1' }, 'Sign in to the console'),
    h('p', { class: 'lead' }, 'Connections at a glance: status, links, reconnects and errors explained.'),
    form,
  ];
}
