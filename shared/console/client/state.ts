/**
 * @module console/client/state
 * What the console knows between views: the API client (holding the credentials), the providers, the latest
 * list and the connection views fetched for it. Everything here is memory only.
 */
import type { ConnectionSummary, ConnectionView, ManageApi, PresetInfo, ProviderInfo } from './api.ts';

export interface ConsoleState {
  api: ManageApi | undefined;
  /** Shown in the header: how the admin signed in. */
  who: string;
  providers: ProviderInfo[];
  presets: PresetInfo[];
  summaries: ConnectionSummary[];
  /** Full views for the list's description and account columns, refetched when the summary changes. */
  views: Map<string, { key: string; view: ConnectionView }>;
  listedAt: number | undefined;
  filter: string;
  statusFilter: string;
  sort: { key: SortKey; descending: boolean };
}

export type SortKey = 'connection' | 'status' | 'accessTokenExpiresAt' | 'refreshedAt' | 'failures';

export const state: ConsoleState = {
  api: undefined,
  who: '',
  providers: [],
  presets: [],
  summaries: [],
  views: new Map(),
  listedAt: undefined,
  filter: '',
  statusFilter: '',
  sort: { key: 'connection', descending: false },
};

/** What changes in a summary when the full view could have changed too. */
export function summaryKey(s: ConnectionSummary): string {
  return [s.status, s.refreshedAt ?? '', s.accessTokenExpiresAt ?? '', s.failures, s.provider].join('|');
}

export function forgetSession(): void {
  state.api = undefined;
  state.who = '';
  state.providers = [];
  state.presets = [];
  state.summaries = [];
  state.views.clear();
  state.listedAt = undefined;
}

/** Runs `task` over `items` with at most `limit` in flight (the list fetches details a few at a time). */
export async function eachLimited<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
