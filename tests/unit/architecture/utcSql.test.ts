/**
 * Every instant crosses into ClickHouse with an explicit UTC zone. chDB (and a server whose time zone is not UTC) reads a
 * zone-less `DateTime`/`DateTime64` parameter, `toDateTime('…')` or `today()` in the process's zone, which moved the
 * retention boundaries by up to 14 hours (docs/retention.md "Time zones"). This scans the SQL in services/ and fails on
 * any such construct, naming file and line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '../../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const RULES: [RegExp, string][] = [
  [/\{\w+:DateTime(64\(\d\))?\}/, "a DateTime parameter without a zone: use {x:DateTime64(3, 'UTC')}"],
  [/\{\w+:Nullable\(DateTime(64\(\d\))?\)\}/, 'a DateTime parameter without a zone'],
  [/\btoday\(\)|\byesterday\(\)/, 'today()/yesterday() are in the server zone: compute the date in UTC'],
  [/(?<![.\w])now(64)?\(\)/, "now()/now64() without a zone: use now64(3, 'UTC')"],
  [/\btoDateTime(64)?\('[^']*'\)/, 'a date-time literal without a zone'],
];

export function problemsIn(text: string, file: string): string[] {
  const out: string[] = [];
  for (const [n, line] of text.split('\n').entries()) {
    for (const [re, why] of RULES) if (re.test(line)) out.push(`${file}:${n + 1}: ${why}: ${line.trim().slice(0, 120)}`);
  }
  return out;
}

describe('SQL instants are UTC', () => {
  it('no zone-less date-time parameter, literal or clock function in services/', () => {
    const problems = sources(join(root, 'services')).flatMap((f) => problemsIn(readFileSync(f, 'utf8'), relative(root, f)));
    assert.deepEqual(problems, []);
  });

  it('the scan catches each kind', () => {
    const bad = [
      'WHERE event_time < {b:DateTime64(3)}',
      'WHERE at >= {from:DateTime}',
      'WHERE day = today()',
      'SELECT now()',
      "WHERE t > toDateTime('2026-01-01 00:00:00')",
    ];
    for (const line of bad) assert.equal(problemsIn(line, 'x.ts').length, 1, line);
    assert.deepEqual(problemsIn("WHERE event_time < {b:DateTime64(3, 'UTC')} AND now64(3, 'UTC') > x", 'x.ts'), []);
  });
});
