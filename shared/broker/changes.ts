/**
 * @module broker/changes
 * The one hook through which the outside world hears of a connection's change: called after each successful
 * write or delete with the record before and after. What is told, and to whom, is decided by the listener
 * (shared/notify); a failing listener never fails the broker's own work.
 */
import type { ConnectionRecord } from '../store/types.ts';
import type { BrokerContext } from './context.ts';

export type ChangeListener = (
  before: ConnectionRecord | undefined,
  after: ConnectionRecord | undefined,
) => Promise<void>;

export async function announce(
  ctx: BrokerContext,
  before: ConnectionRecord | undefined,
  after: ConnectionRecord | undefined,
): Promise<void> {
  if (!ctx.onChange) return;
  try {
    await ctx.onChange(before, after);
  } catch (err) {
    ctx.log.error('notify.listener_failed', {
      connection: (after ?? before)?.connection,
      reason: err instanceof Error ? err.name : 'non-error',
    });
  }
}
