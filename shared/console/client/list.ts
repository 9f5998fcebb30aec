/**
 * @module console/client/list
 * Every connection at a glance: name (the parameter name callers use), description, provider, account, status
 * badge, token expiry, last refresh and failures; filter, sort, and a refresh every 30 s while the tab is
 * visible. The summary list is one manage call; the description and account come from each connection's view,
 * fetched only when its summary changed since the last look.
 */
import { statusBadge } from '../explain.ts';
import type { ConnectionSummary } from './api.ts';
import { h, timeEl, uid } from './dom.ts';
import { show } from './nav.ts';
import { eachLimited, type SortKey, state, summaryKey } from './state.ts';

export const REFRESH_EVERY_MS = 30_000;

const STATUS_ORDER: Record<string, number> = { error: 0, needs_reauth: 1, pending: 2, active: 3 };
const COLUMNS: { key: SortKey | undefined; label: string }[] = [
  { key: 'connection', label: 'Name' },
  { key: undefined, label: 'Description' },
  { key: undefined, label: 'Provider' },
  { key: undefined, label: 'Account' },
  { key: 'status', label: 'Status' },
  { key: 'accessTokenExpiresAt', label: 'Token expires' },
  { key: 'refreshedAt', label: 'Last refresh' },
  { key: 'failures', label: 'Failures' },
];

export function badge(status: string): HTMLElement {
  const b = statusBadge(status);
  return h('span', { class: `badge ${b.tone}`, 'data-status': status }, b.label);
}

async function load(): Promise<void> {
  const api = state.api;
  if (!api) return;
  const { connections } = await api.list();
  state.summaries = connections;
  state.listedAt = Date.now();
  const names = new Set(connections.map((c) => c.connection));
  for (const name of state.views.keys()) if (!names.has(name)) state.views.delete(name);
  const stale = connections.filter((c) => state.views.get(c.connection)?.key !== summaryKey(c));
  await eachLimited(stale, 4, async (c) => {
    try {
      state.views.set(c.connection, { key: summaryKey(c), view: await api.get(c.connection) });
    } catch {
      // Deleted meanwhile, or a transient failure: the row shows what the summary has.
    }
  });
}

function compare(a: ConnectionSummary, b: ConnectionSummary, key: SortKey): number {
  switch (key) {
    case 'connection':
      return a.connection.localeCompare(b.connection);
    case 'status':
      return (STATUS_ORDER[a.status] ?? -1) - (STATUS_ORDER[b.status] ?? -1);
    case 'failures':
      return a.failures - b.failures;
    default: {
      // Missing times sort last either way round.
      const x = a[key] ? Date.parse(a[key]) : Number.POSITIVE_INFINITY;
      const y = b[key] ? Date.parse(b[key]) : Number.POSITIVE_INFINITY;
      return x === y ? 0 : x < y ? -1 : 1;
    }
  }
}

function visible(): ConnectionSummary[] {
  const needle = state.filter.trim().toLowerCase();
  const rows = state.summaries.filter((s) => {
    if (state.statusFilter && s.status !== state.statusFilter) return false;
    if (!needle) return true;
    const view = state.views.get(s.connection)?.view;
    return [s.connection, s.provider, view?.description, view?.identity?.username]
      .filter((v): v is string => typeof v === 'string')
      .some((v) => v.toLowerCase().includes(needle));
  });
  const { key, descending } = state.sort;
  rows.sort((a, b) => {
    const c = compare(a, b, key) || a.connection.localeCompare(b.connection);
    return descending ? -c : c;
  });
  return rows;
}

function row(s: ConnectionSummary): HTMLElement {
  const view = state.views.get(s.connection)?.view;
  return h(
    'tr',
    { 'data-connection': s.connection },
    h('th', { scope: 'row' }, h('a', { href: `#/c/${s.connection}`, class: 'name' }, s.connection)),
    h('td', {}, view?.description ?? h('span', { class: 'muted' }, '—')),
    h('td', {}, s.provider),
    h('td', {}, view?.identity?.username ?? h('span', { class: 'muted' }, '—')),
    h('td', {}, badge(s.status)),
    h('td', {}, timeEl(s.accessTokenExpiresAt)),
    h('td', {}, timeEl(s.refreshedAt)),
    h('td', { class: s.failures > 0 ? 'num bad-text' : 'num' }, s.failures),
  );
}

export async function renderList(focus: boolean): Promise<() => void> {
  await load();
  const filterId = uid('filter');
  const statusId = uid('status');
  const tbody = h('tbody');
  const count = h('p', { class: 'count', id: 'list-count' });
  const updated = h('span', { class: 'muted', id: 'list-updated' });
  const heads = COLUMNS.map((c) => {
    if (!c.key) return h('th', { scope: 'col' }, c.label);
    const key = c.key;
    const th = h('th', { scope: 'col' });
    const button = h(
      'button',
      {
        type: 'button',
        class: 'sort',
        'data-sort': key,
        onclick: () => {
          state.sort =
            state.sort.key === key ? { key, descending: !state.sort.descending } : { key, descending: false };
          paint();
        },
      },
      c.label,
      h('span', { class: 'arrow', 'aria-hidden': 'true' }),
    );
    th.append(button);
    return th;
  });

  function paint(): void {
    const rows = visible();
    tbody.replaceChildren(
      ...(rows.length
        ? rows.map(row)
        : [
            h(
              'tr',
              {},
              h(
                'td',
                { colspan: COLUMNS.length, class: 'empty' },
                state.summaries.length
                  ? 'No connection matches the filter.'
                  : h(
                      'span',
                      {},
                      'No connections yet. ',
                      h('a', { href: '#/new' }, 'Create the first one'),
                      '.',
                    ),
              ),
            ),
          ]),
    );
    heads.forEach((th, i) => {
      const key = COLUMNS[i]?.key;
      if (!key) return;
      const active = state.sort.key === key;
      if (active) th.setAttribute('aria-sort', state.sort.descending ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
      const arrow = th.querySelector('.arrow');
      if (arrow) arrow.textContent = active ? (state.sort.descending ? ' ▼' : ' ▲') : '';
    });
    const total = state.summaries.length;
    count.textContent =
      rows.length === total
        ? `${total} connection${total === 1 ? '' : 's'}`
        : `${rows.length} of ${total} connections shown`;
    updated.textContent = state.listedAt
      ? `Updated ${new Date(state.listedAt).toLocaleTimeString('en')} · refreshes every 30 s`
      : '';
  }

  const filter = h('input', {
    id: filterId,
    type: 'search',
    value: state.filter,
    placeholder: 'name, description, account',
    autocomplete: 'off',
    oninput: (e: Event) => {
      state.filter = (e.target as HTMLInputElement).value;
      paint();
    },
  });
  const statusSelect = h(
    'select',
    {
      id: statusId,
      onchange: (e: Event) => {
        state.statusFilter = (e.target as HTMLSelectElement).value;
        paint();
      },
    },
    ...[
      ['', 'Any status'],
      ['active', 'Active'],
      ['pending', 'Not connected'],
      ['needs_reauth', 'Needs sign-in'],
      ['error', 'Error'],
    ].map(([value, label]) => h('option', { value, selected: value === state.statusFilter }, label)),
  );
  const refreshButton = h(
    'button',
    {
      type: 'button',
      id: 'refresh-list',
      onclick: () => void tick(),
    },
    'Reload',
  );

  show(
    [
      h(
        'div',
        { class: 'title-row' },
        h('h1', { tabindex: '-1' }, 'Connections'),
        h('a', { href: '#/new', class: 'button primary', id: 'new-connection' }, 'New connection'),
      ),
      h(
        'div',
        { class: 'toolbar', role: 'search' },
        h('div', { class: 'field' }, h('label', { for: filterId }, 'Filter'), filter),
        h('div', { class: 'field' }, h('label', { for: statusId }, 'Status'), statusSelect),
        refreshButton,
      ),
      h('div', { class: 'meta-row' }, count, updated),
      h(
        'div',
        { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'list-caption' },
        h(
          'table',
          { class: 'connections' },
          h('caption', { id: 'list-caption', class: 'visually-hidden' }, 'Connections (sortable columns)'),
          h('thead', {}, h('tr', {}, ...heads)),
          tbody,
        ),
      ),
    ],
    focus,
  );
  paint();

  let busy = false;
  async function tick(): Promise<void> {
    if (busy || document.hidden) return;
    busy = true;
    try {
      await load();
      paint();
    } catch {
      updated.textContent = 'Could not refresh the list; retrying.';
    } finally {
      busy = false;
    }
  }
  const timer = window.setInterval(() => void tick(), REFRESH_EVERY_MS);
  const onVisible = () => {
    if (!document.hidden) void tick();
  };
  document.addEventListener('visibilitychange', onVisible);
  return () => {
    window.clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
}
