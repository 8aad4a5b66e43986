import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, sealStatement, statementForReaders } from '../../../../services/core/index.ts';

describe('a statement as readers get it', () => {
  const sealed = sealStatement({
    account_id: 'acct-0004',
    month: '2026-10',
    status: 'closed',
    closed_at: '2026-11-01T00:05:00.000Z',
    closed_by: 'cli:ops',
    lines: [
      { currency: 'EUR', records: 612, segments: 700, duration_ms: 0, billable_seconds: 0, amount_micros: 31_250_000, cost_micros: 17_100_000 },
      { currency: 'USD', records: 3, segments: 3, duration_ms: 185_000, billable_seconds: 190, amount_micros: 90_000, cost_micros: 45_000 },
    ],
    unrated_records: 140,
    adjustments: [],
  });

  it('carries minutes per line, two decimals', () => {
    const read = statementForReaders(sealed);
    assert.deepEqual(
      read.lines.map((l) => l.minutes),
      [0, 3.17],
    );
  });

  it('verifies by the documented recipe: drop digest, digest_verified and each line’s minutes, SHA-256 of RFC 8785', () => {
    // Found from outside: the served statement did not hash to its own digest (minutes were added after sealing).
    const served = JSON.parse(JSON.stringify({ ...statementForReaders(sealed), digest_verified: true })) as Record<string, unknown> & {
      lines: Record<string, unknown>[];
    };
    const { digest, digest_verified: _verified, ...rest } = served;
    const body = { ...rest, lines: rest.lines.map(({ minutes: _minutes, ...line }) => line) };
    assert.equal(createHash('sha256').update(canonicalJson(body)).digest('hex'), digest);
  });
});
