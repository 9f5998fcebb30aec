/**
 * @module console/client/form
 * Create or edit a connection. The input is checked with the very zod schemas the manage API uses
 * (shared/schemas.ts), so the console shows every problem field by field before sending; a problem the API still
 * reports (problem+json) is attached to the field it names.
 */
import type { z } from 'zod';
import { connectionName, connectionSettingsBody } from '../../schemas.ts';
import { ApiError, type ConnectionSettings, type ConnectionView, type Identity } from './api.ts';
import { h, plainInput, uid } from './dom.ts';
import { go, show, toast } from './nav.ts';
import { state } from './state.ts';

type FieldKey =
  'name' | 'provider' | 'scopes' | 'description' | 'username' | 'tenantId' | 'objectId' | 'allowedCallers';

interface Field {
  key: FieldKey;
  label: string;
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  hint?: string;
  error: HTMLElement;
  wrap: HTMLElement;
  hintId?: string;
}

/** Splits a textarea into tokens: one per line or separated by spaces or commas. */
export function tokens(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

/** Maps a zod issue path (as the API would report it) to the form field showing it. */
export function fieldOf(path: readonly PropertyKey[] | string): FieldKey | undefined {
  const parts = typeof path === 'string' ? path.split('.') : path.map(String);
  const [first, second] = parts;
  if (first === 'expectedIdentity') {
    return second === 'tenantId' || second === 'objectId' || second === 'username' ? second : 'username';
  }
  if (first === 'provider' || first === 'scopes' || first === 'description' || first === 'allowedCallers')
    return first;
  if (first === 'connection' || first === 'name') return 'name';
  return undefined;
}

function label(path: readonly PropertyKey[]): string {
  const index = path.find((p) => typeof p === 'number');
  return typeof index === 'number' ? ` (item ${index + 1})` : '';
}

/** Configured providers are choosable; presets not configured yet are named with how to add one. */
function providerHint(): Node | string | undefined {
  const presets = state.presets;
  if (!state.providers.length && !presets.length) return 'No provider is configured on this broker.';
  if (!presets.length) return undefined;
  return h(
    'span',
    { id: 'preset-hint' },
    `Also available as presets: ${presets.map((p) => p.name).join(', ')}. Add one with BROKER_PROVIDERS, e.g. `,
    h(
      'code',
      {},
      `{"${presets[0]?.name}":{"preset":"${presets[0]?.name}","clientId":"…","clientSecretSetting":"…"}}`,
    ),
    presets.some((p) => p.requiresIssuer)
      ? ` (${presets
          .filter((p) => p.requiresIssuer)
          .map((p) => p.name)
          .join(', ')} also need "issuer")`
      : '',
    ', then restart the app.',
  );
}

export async function renderForm(name: string | undefined, focus: boolean): Promise<void> {
  const api = state.api;
  if (!api) return;
  let existing: ConnectionView | undefined;
  if (name) existing = await api.get(name);
  const providers = state.providers;
  const defaults = (provider: string) => providers.find((p) => p.name === provider)?.defaultScopes ?? [];

  const fields = new Map<FieldKey, Field>();
  function field(
    key: FieldKey,
    labelText: string,
    control: Field['control'],
    hint?: string | Node,
  ): HTMLElement {
    const id = uid(key);
    control.id = id;
    control.setAttribute('name', key);
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const hintId = hint ? `${id}-hint` : undefined;
    if (hintId) control.setAttribute('aria-describedby', hintId);
    const wrap = h(
      'div',
      { class: 'field' },
      h('label', { for: id }, labelText),
      hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
      control,
      error,
    );
    fields.set(key, { key, label: labelText, control, error, wrap, ...(hintId ? { hintId } : {}) });
    return wrap;
  }

  const nameInput = h('input', {
    type: 'text',
    value: name ?? '',
    autocomplete: 'off',
    spellcheck: 'false',
    class: 'mono',
    ...(name ? { readonly: true } : {}),
  });
  const providerSelect = h(
    'select',
    {},
    ...providers.map((p) =>
      h(
        'option',
        { value: p.name, selected: existing ? existing.provider === p.name : p.name === providers[0]?.name },
        `${p.name}${p.kind === 'microsoft' ? ' (Microsoft identity platform)' : p.preset ? ` (${p.preset} preset)` : ''}`,
      ),
    ),
  );
  if (existing && !providers.some((p) => p.name === existing.provider)) {
    providerSelect.append(
      h('option', { value: existing.provider, selected: true }, `${existing.provider} (not configured)`),
    );
  }
  const initialScopes = existing ? existing.scopes : defaults(providerSelect.value);
  const scopes = h('textarea', { rows: 4, spellcheck: 'false', class: 'mono' });
  scopes.value = initialScopes.join('\n');
  const useDefaults = h('button', { type: 'button', id: 'use-defaults' }, 'Use the provider’s defaults');
  useDefaults.addEventListener('click', () => {
    scopes.value = defaults(providerSelect.value).join('\n');
    scopes.focus();
  });
  providerSelect.addEventListener('change', () => {
    // Swap in the new provider's defaults unless the admin already typed their own.
    const current = tokens(scopes.value).join(' ');
    const wasDefault = providers.some((p) => p.defaultScopes.join(' ') === current) || current === '';
    if (wasDefault) scopes.value = defaults(providerSelect.value).join('\n');
  });
  const description = h('input', { type: 'text', value: existing?.description ?? '', autocomplete: 'off' });
  const username = plainInput({ value: existing?.expectedIdentity?.username ?? '' });
  const tenantId = plainInput({ value: existing?.expectedIdentity?.tenantId ?? '', class: 'mono' });
  const objectId = plainInput({ value: existing?.expectedIdentity?.objectId ?? '', class: 'mono' });
  const callers = h('textarea', { rows: 3, spellcheck: 'false', class: 'mono' });
  callers.value = (existing?.allowedCallers ?? []).join('\n');

  const summary = h('div', { class: 'error-summary', id: 'error-summary', tabindex: '-1', hidden: true });
  const submit = h(
    'button',
    { type: 'submit', class: 'primary', id: 'save' },
    name ? 'Save changes' : 'Create connection',
  );

  function clearErrors(): void {
    summary.hidden = true;
    summary.replaceChildren();
    for (const f of fields.values()) {
      f.error.hidden = true;
      f.error.textContent = '';
      f.control.removeAttribute('aria-invalid');
      if (f.hintId) f.control.setAttribute('aria-describedby', f.hintId);
      else f.control.removeAttribute('aria-describedby');
    }
  }

  function showErrors(problems: { key: FieldKey | undefined; message: string }[]): void {
    const items: HTMLElement[] = [];
    for (const p of problems) {
      const f = p.key ? fields.get(p.key) : undefined;
      if (f) {
        f.error.hidden = false;
        f.error.textContent = f.error.textContent ? `${f.error.textContent} ${p.message}` : p.message;
        f.control.setAttribute('aria-invalid', 'true');
        f.control.setAttribute('aria-describedby', [f.error.id, f.hintId].filter(Boolean).join(' '));
        items.push(
          h(
            'li',
            {},
            h(
              'a',
              {
                href: `#${f.control.id}`,
                onclick: (e: Event) => {
                  e.preventDefault();
                  f.control.focus();
                },
              },
              `${f.label}: ${p.message}`,
            ),
          ),
        );
      } else items.push(h('li', {}, p.message));
    }
    summary.replaceChildren(
      h('h2', {}, problems.length === 1 ? 'There is a problem' : `There are ${problems.length} problems`),
      h('ul', {}, ...items),
    );
    summary.hidden = false;
    summary.focus();
  }

  function collect(): {
    body: ConnectionSettings;
    problems: { key: FieldKey | undefined; message: string }[];
  } {
    const problems: { key: FieldKey | undefined; message: string }[] = [];
    const target = nameInput.value.trim();
    const nameCheck = connectionName.safeParse(target);
    if (!target) problems.push({ key: 'name', message: 'Enter a name.' });
    else if (!nameCheck.success)
      problems.push({ key: 'name', message: nameCheck.error.issues[0]?.message ?? 'invalid' });
    else if (!name && state.summaries.some((s) => s.connection === target))
      problems.push({ key: 'name', message: 'A connection with this name exists already; edit it instead.' });
    const identity: Identity = {};
    if (username.value.trim()) identity.username = username.value.trim();
    if (tenantId.value.trim()) identity.tenantId = tenantId.value.trim();
    if (objectId.value.trim()) identity.objectId = objectId.value.trim();
    const body: ConnectionSettings = { provider: providerSelect.value, scopes: tokens(scopes.value) };
    if (description.value.trim()) body.description = description.value.trim();
    if (Object.keys(identity).length) body.expectedIdentity = identity;
    const callerList = tokens(callers.value);
    if (callerList.length) body.allowedCallers = callerList;
    const parsed = connectionSettingsBody.safeParse(body);
    if (!parsed.success) {
      for (const issue of (parsed.error as z.ZodError).issues) {
        problems.push({ key: fieldOf(issue.path), message: `${issue.message}${label(issue.path)}` });
      }
    }
    return { body, problems };
  }

  const form = h(
    'form',
    { class: 'card form', novalidate: true },
    summary,
    field(
      'name',
      'Name (the parameter name callers use)',
      nameInput,
      name
        ? 'A connection keeps its name; create a new one to rename.'
        : 'Lower-case letters, digits and inner hyphens, up to 63 characters, e.g. sales-mailbox. Callers fetch /api/connections/<name>/token.',
    ),
    field(
      'description',
      'Description',
      description,
      'What the connection is for, e.g. "Invoices sent from accounting@…".',
    ),
    field('provider', 'Provider', providerSelect, providerHint()),
    h(
      'div',
      { class: 'with-action' },
      field(
        'scopes',
        'Scopes',
        scopes,
        'One per line. Empty uses the provider’s defaults. offline_access, openid and profile are added by the broker.',
      ),
      useDefaults,
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Expected account (optional)'),
      h('p', { class: 'hint' }, 'A sign-in by any other account is refused with "wrong account".'),
      field('username', 'Username', username),
      field('tenantId', 'Tenant ID', tenantId),
      field('objectId', 'Object ID', objectId),
    ),
    field(
      'allowedCallers',
      'Allowed callers (optional)',
      callers,
      'Entra app ids allowed to fetch this token, one per line. Empty: every authenticated caller.',
    ),
    h(
      'div',
      { class: 'actions' },
      submit,
      h('a', { href: name ? `#/c/${name}` : '#/', class: 'button' }, 'Cancel'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors();
    const { body, problems } = collect();
    if (problems.length) return showErrors(problems);
    const target = nameInput.value.trim();
    submit.disabled = true;
    api
      .put(target, body)
      .then((view) => {
        state.views.delete(target);
        toast(name ? `Saved ${target}.` : `Created ${target}. Create a connect link next.`);
        go(`#/c/${view.connection}`);
      })
      .catch((err: unknown) => {
        if (err instanceof ApiError) {
          const key = err.field ? fieldOf(err.field) : undefined;
          showErrors([{ key, message: `${err.message} (${err.code})` }]);
        } else
          showErrors([{ key: undefined, message: err instanceof Error ? err.message : 'Saving failed.' }]);
      })
      .finally(() => {
        submit.disabled = false;
      });
  });

  show(
    [
      h(
        'p',
        { class: 'crumbs' },
        h('a', { href: name ? `#/c/${name}` : '#/' }, name ? `← ${name}` : '← All connections'),
      ),
      h('h1', { tabindex: '-1' }, name ? `Edit ${name}` : 'New connection'),
      form,
    ],
    focus,
  );
}
