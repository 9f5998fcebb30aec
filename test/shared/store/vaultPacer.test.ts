import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createVaultPacerPolicy } from '../../../shared/store/vaultPacer.ts';

type Send = Parameters<ReturnType<typeof createVaultPacerPolicy>['policy']['sendRequest']>;

/** Drives the pipeline policy directly with a fake transport answering `statuses` in order. */
function harness(opts: Parameters<typeof createVaultPacerPolicy>[0], statuses: number[]) {
  const { policy } = createVaultPacerPolicy(opts);
  const sentAt: number[] = [];
  const next = (() => {
    sentAt.push(Date.now());
    return Promise.resolve({ status: statuses.shift() ?? 200 });
  }) as unknown as Send[1];
  const send = () => policy.sendRequest({} as Send[0], next);
  return { send, sentAt };
}

describe('vault pacer', () => {
  it('keeps the process under the window budget', async () => {
    const { send, sentAt } = harness({ limit: 3, windowMs: 200 }, []);
    const started = Date.now();
    await Promise.all([send(), send(), send(), send()]);
    assert.equal(sentAt.length, 4);
    assert.ok((sentAt[3] ?? 0) - started >= 190, 'the fourth request waits for the window to move');
    assert.ok((sentAt[2] ?? 0) - started < 100, 'the first three go at once');
  });

  it('pauses every request after a 429, doubling while 429s continue and resetting on success', async () => {
    const { send, sentAt } = harness({ initialPauseMs: 80, maxPauseMs: 1000 }, [429, 429, 200, 200]);
    await send();
    await send();
    await send();
    await send();
    const gaps = sentAt.slice(1).map((t, i) => t - (sentAt[i] ?? 0));
    assert.ok((gaps[0] ?? 0) >= 75, `first pause ~80 ms, got ${gaps[0]}`);
    assert.ok((gaps[1] ?? 0) >= 155, `second pause ~160 ms, got ${gaps[1]}`);
    assert.ok((gaps[2] ?? 0) < 60, `no pause after a success, got ${gaps[2]}`);
  });
});
