/**
 * @module console/client/details
 * One connection: its problem explained for people, connect links (lifetime, copy, QR, expiry), the account
 * and scopes, token times, force refresh, delete with confirmation and the old manual path — importing a
 * refresh token — behind a warning. Every action is one manage API call.
 */
import { explainError } from '../explain.ts';
import { ApiError, type ConnectionView } from './api.ts';
import { exactTime, fromNow, h, plainInput, timeEl, uid } from './dom.ts';
import { badge, REFRESH_EVERY_MS } from './list.ts';
import { go, show, toast } from './nav.ts';
import { qrSvg } from './qr.ts';
import { state } from './state.ts';

const LIFETIMES: [seconds: number, label: string][] = [
  [15 * 60, '15 minutes'],
  [3600, '1 hour'],
  [24 * 3600, '1 day'],
  [7 * 24 * 3600, '7 days'],
];

function dl(pairs: [string, Node | string | undefined][]): HTMLElement {
  const out = h('dl', { class: 'facts' });
  for (const [label, value] of pairs) {
    out.append(h('dt', {}, label), h('dd', {}, value ?? h('span', { class: 'muted' }, '—')));
  }
  return out;
}

function list(values: string[] | undefined, empty: string): Node {
  if (!values?.length) return h('span', { class: 'muted' }, empty);
  return h('ul', { class: 'plain' }, ...values.map((v) => h('li', {}, h('code', {}, v))));
}

function identityText(id: ConnectionView['identity']): string | undefined {
  if (!id) return undefined;
  const parts = [
    id.username,
    id.tenantId ? `tenant ${id.tenantId}` : undefined,
    id.objectId ? `object ${id.objectId}` : undefined,
  ];
  return parts.filter(Boolean).join(' · ') || undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : 'Unexpected error.';
}

/** A busy-safe click handler: disables the button while the call runs, shows failures next to it. */
function action(button: HTMLButtonElement, out: HTMLElement, run: () => Promise<void>): void {
  button.addEventListener('click', () => {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    out.textContent = '';
    run()
      .catch((err: unknown) => {
        out.textContent = errorMessage(err);
      })
      .finally(() => {
        button.disabled = false;
        button.removeAttribute('aria-busy');
      });
  });
}

function problemSection(view: ConnectionView): HTMLElement | null {
  const why = explainError(view.status, view.lastError);
  if (!why) return null;
  const tone = view.status === 'error' ? 'bad' : view.status === 'pending' ? 'idle' : 'warn';
  return h(
    'section',
    {
      class: `card problem ${tone}`,
      'aria-labelledby': 'problem-title',
      id: 'problem',
      'data-action': why.action,
    },
    h('h2', { id: 'problem-title' }, why.title),
    h('p', {}, why.meaning),
    h('p', { class: 'todo' }, h('strong', {}, 'What to do: '), why.todo),
    why.action === 'send_link'
      ? h(
          'p',
          {},
          h(
            'button',
            {
              type: 'button',
              id: 'go-to-link',
              onclick: () => document.getElementById('create-link')?.focus(),
            },
            'Create a new link',
          ),
        )
      : null,
    why.codes.length || view.lastError
      ? h(
          'p',
          { class: 'muted small' },
          why.codes.length
            ? ['Codes: ', ...why.codes.flatMap((c, i) => [i ? ', ' : '', h('code', {}, c)])]
            : null,
          view.lastError ? [' · last failure ', timeEl(view.lastError.at)] : null,
          view.nextAttemptAt ? [' · next automatic attempt ', timeEl(view.nextAttemptAt)] : null,
        )
      : null,
  );
}

function linkSection(name: string): HTMLElement {
  const lifetimeId = uid('ttl');
  const select = h(
    'select',
    { id: lifetimeId },
    ...LIFETIMES.map(([s, label]) => h('option', { value: s, selected: s === 3600 }, label)),
  );
  const create = h('button', { type: 'button', id: 'create-link', class: 'primary' }, 'Create link');
  const out = h('p', { class: 'field-error', role: 'alert' });
  const result = h('div', { class: 'link-result', id: 'link-result' });
  action(create, out, async () => {
    const api = state.api;
    if (!api) return;
    const link = await api.link(name, Number(select.value));
    const urlId = uid('url');
    const field = h('input', {
      id: urlId,
      type: 'text',
      readonly: true,
      value: link.url,
      class: 'mono',
      spellcheck: 'false',
    });
    const copy = h('button', { type: 'button', id: 'copy-link' }, 'Copy');
    copy.addEventListener('click', () => {
      void copyText(link.url, field).then((ok) =>
        toast(ok ? 'Link copied to the clipboard.' : 'Select the link and copy it.'),
      );
    });
    result.replaceChildren(
      h('label', { for: urlId }, 'Connect link — send it to the account owner'),
      h('div', { class: 'copy-row' }, field, copy),
      h(
        'p',
        { class: 'expiry', id: 'link-expiry' },
        'Expires ',
        h('time', { datetime: link.expiresAt }, `${exactTime(link.expiresAt)} (${fromNow(link.expiresAt)})`),
        '. Until then anyone holding it can connect an account to this connection (set an expected account to pin one): send it to the account owner only.',
      ),
      h(
        'figure',
        { class: 'qr-box' },
        qrSvg(link.url, `QR code of the connect link for ${name}`),
        h('figcaption', {}, 'Scan to open the link on a phone.'),
      ),
    );
    field.focus();
    field.select();
  });
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'link-title', id: 'link' },
    h('h2', { id: 'link-title' }, 'Connect link'),
    h(
      'p',
      { class: 'hint' },
      'The account owner opens the link, signs in at the provider and consents; the broker stores the grant.',
    ),
    h(
      'div',
      { class: 'inline' },
      h('div', { class: 'field' }, h('label', { for: lifetimeId }, 'Valid for'), select),
      create,
    ),
    out,
    result,
  );
}

async function copyText(text: string, field: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    field.focus();
    field.select();
    return false;
  }
}

function importSection(name: string, onDone: (view: ConnectionView) => void): HTMLElement {
  const tokenId = uid('rt');
  const ackId = uid('ack');
  const warnId = uid('warn');
  const input = plainInput({ id: tokenId, 'aria-describedby': warnId }, true);
  const ack = h('input', { id: ackId, type: 'checkbox' });
  const button = h('button', { type: 'button', id: 'import-token' }, 'Import');
  const out = h('p', { class: 'field-error', role: 'alert' });
  action(button, out, async () => {
    const api = state.api;
    if (!api) return;
    if (!input.value.trim()) throw new Error('Paste the refresh token first.');
    if (!ack.checked) throw new Error('Confirm that you understand the warning.');
    const view = await api.importToken(name, input.value.trim());
    input.value = '';
    ack.checked = false;
    toast('Refresh token imported and proven by one refresh.');
    onDone(view);
  });
  return h(
    'details',
    { class: 'card', id: 'import' },
    h('summary', {}, 'Import a refresh token (manual path)'),
    h(
      'p',
      { id: warnId, class: 'warning' },
      'Prefer a connect link. A pasted refresh token skips the sign-in the broker can verify: the account and its consent are not checked, and the token has passed through other hands (a clipboard, a chat). The broker proves it with one refresh before storing it; the identity stays unknown.',
    ),
    h('label', { for: tokenId }, 'Refresh token'),
    input,
    h('div', { class: 'check' }, ack, h('label', { for: ackId }, 'I understand the risks')),
    button,
    out,
  );
}

function confirmDelete(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const cancel = h('button', { type: 'button', id: 'cancel-delete', class: 'primary' }, 'Cancel');
    const confirm = h(
      'button',
      { type: 'button', id: 'confirm-delete', class: 'danger' },
      'Delete connection',
    );
    const dialog = h(
      'dialog',
      { 'aria-labelledby': titleId, class: 'confirm' },
      h('h2', { id: titleId }, `Delete ${name}?`),
      h(
        'p',
        {},
        'The stored grant is removed (soft-deleted in Key Vault). Callers get 404 for this name until it is created and connected again.',
      ),
      h('div', { class: 'actions' }, cancel, confirm),
    );
    const close = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => close(false));
    confirm.addEventListener('click', () => close(true));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export async function renderDetails(name: string, focus: boolean): Promise<() => void> {
  const api = state.api;
  if (!api) return () => undefined;
  let view: ConnectionView;
  try {
    view = await api.get(name);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'unknown_connection') {
      show([
        h('h1', { tabindex: '-1' }, 'No such connection'),
        h('p', {}, `There is no connection named ${name}.`),
        h('p', {}, h('a', { href: '#/' }, 'Back to all connections')),
      ]);
      return () => undefined;
    }
    throw err;
  }

  const statusBox = h('div', { class: 'status-box' });
  const facts = h('div');
  const actionOut = h('p', { class: 'field-error', role: 'alert' });
  const refresh = h('button', { type: 'button', id: 'force-refresh' }, 'Force refresh');
  const del = h('button', { type: 'button', id: 'delete', class: 'danger' }, 'Delete…');
  const edit = h('a', { href: `#/c/${name}/edit`, class: 'button', id: 'edit' }, 'Edit');

  function paint(v: ConnectionView): void {
    view = v;
    statusBox.replaceChildren(
      h(
        'p',
        { class: 'status-line' },
        badge(v.status),
        v.description ? h('span', { class: 'desc' }, v.description) : null,
      ),
      problemSection(v) ?? '',
    );
    facts.replaceChildren(
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'account-title' },
        h('h2', { id: 'account-title' }, 'Account and scopes'),
        dl([
          ['Account', identityText(v.identity)],
          ['Expected account', identityText(v.expectedIdentity) ?? 'any'],
          ['Provider', v.provider],
          ['Requested scopes', list(v.scopes, 'provider defaults')],
          ['Granted scopes', list(v.grantedScopes, 'none yet')],
          ['Allowed callers', list(v.allowedCallers, 'every authenticated caller')],
        ]),
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'tokens-title' },
        h('h2', { id: 'tokens-title' }, 'Tokens'),
        dl([
          [
            'Access token expires',
            v.accessTokenExpiresAt && v.status !== 'active'
              ? h(
                  'span',
                  {},
                  timeEl(v.accessTokenExpiresAt),
                  ' (not served while the connection needs attention)',
                )
              : timeEl(v.accessTokenExpiresAt),
          ],
          ['Last refresh', timeEl(v.refreshedAt)],
          [
            'Grant expires',
            v.grantExpiresAt
              ? h('span', {}, timeEl(v.grantExpiresAt), ' — send a new link before then')
              : 'not announced by the provider',
          ],
          ['Connected', timeEl(v.connectedAt)],
          ['Failures in a row', String(v.failures)],
          ['Next automatic attempt', v.nextAttemptAt ? timeEl(v.nextAttemptAt) : undefined],
          ['Created', timeEl(v.createdAt)],
          ['Settings changed', timeEl(v.updatedAt)],
        ]),
        h(
          'p',
          { class: 'hint' },
          'The broker keeps the latest outcome only (status, failures, last error); the full history is in the logs (Application Insights).',
        ),
      ),
    );
    refresh.disabled = v.status === 'pending';
  }

  action(refresh, actionOut, async () => {
    try {
      paint(await api.refresh(name));
      toast('Refreshed: a new access token was issued.');
    } catch (err) {
      // A failed refresh changed the record (status, last error): show it, then say what failed.
      paint(await api.get(name));
      throw err;
    }
  });
  action(del, actionOut, async () => {
    if (!(await confirmDelete(name))) {
      del.focus();
      return;
    }
    await api.delete(name);
    state.views.delete(name);
    toast(`Deleted ${name}.`);
    go('#/');
  });

  show(
    [
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← All connections')),
      h(
        'div',
        { class: 'title-row' },
        h('h1', { tabindex: '-1', class: 'mono' }, name),
        h('div', { class: 'actions' }, edit, refresh, del),
      ),
      actionOut,
      statusBox,
      linkSection(name),
      facts,
      importSection(name, paint),
    ],
    focus,
  );
  paint(view);

  const timer = window.setInterval(() => {
    if (document.hidden) return;
    api.get(name).then(paint, () => undefined);
  }, REFRESH_EVERY_MS);
  return () => window.clearInterval(timer);
}
