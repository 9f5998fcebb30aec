import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { problemResponse } from '../../../shared/http.ts';
import { createLogger } from '../../../shared/log.ts';
import { classifyFailure } from '../../../shared/oauth/classify.ts';
import { ProviderFailure } from '../../../shared/oauth/provider.ts';

describe('ProviderFailure in request.failed', () => {
  it("logs the broker's own status as httpStatus and the provider's as providerHttpStatus", () => {
    const lines: string[] = [];
    const failure = new ProviderFailure(
      classifyFailure({ httpStatus: 401, body: { error: 'invalid_client' } }),
      'refresh',
    );
    const answer = problemResponse(
      failure,
      createLogger({}, (_l, line) => lines.push(line)),
    );
    const line = lines.find((l) => l.startsWith('request.failed')) ?? '';
    assert.equal(answer.status, failure.status);
    assert.match(line, new RegExp(`\\bhttpStatus=${failure.status}\\b`));
    assert.match(line, /\bproviderHttpStatus=401\b/);
  });
});
