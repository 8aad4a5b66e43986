/**
 * The API's outer contract: the OpenAPI document (valid OpenAPI 3, every route with its roles), the per-token rate
 * limit (the N+1th request in the window is a 429, audited, and other tokens are not affected), and `cdr lea verify`
 * as an officer runs it offline on a saved answer: the untouched answer passes, one changed field fails and is named,
 * in the JSON form and in the streamed forms with their receipt.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { apiRoutes } from '../../../services/api/app.ts';
import { FREE_TEXT_FORMAT, FREE_TEXT_PATTERN } from '../../../services/api/routes/common.ts';
import type { CdrEvent } from '../../../services/core/index.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { storeDirectly } from '../../support/seed.ts';
import { testSetup } from '../../support/testEnv.ts';

const bin = join(import.meta.dirname, '../../../bin/cdr.cjs');
const SUBJECT = '+6591234567';
const LIMIT = 5;

describe('the API contract: OpenAPI, rate limit, offline verification of answers', () => {
  const setup = testSetup();
  let rt: PipelineRuntime;
  let api: TestApi;
  const events: CdrEvent[] = [];
  const body = {
    authority: 'Singapore Police Force',
    case_reference: 'SPF-9',
    legal_basis: 'Criminal Procedure Code s.20',
    identifier: { type: 'msisdn', value: '9123 4567', country: 'SG' },
    from: new Date(Date.now() - 86_400_000).toISOString(),
    to: new Date(Date.now() + 60_000).toISOString(),
  };

  before(async () => {
    rt = await openRuntime(setup.config, { needKafka: false, log: createLogger('silent') });
    const gen = new TrafficGenerator({ seed: 51, scenario: 'normal', startTime: Date.now() - 3_600_000, ratePerSecond: 1 });
    for (let i = 0; i < 12; i++)
      events.push({ ...gen.next(), channel: 'sms', sender_type: 'alphanumeric', sender: 'SHOP', recipient: SUBJECT, destination_country: 'SG' });
    await storeDirectly(rt, events);
    api = await openTestApi(rt, {
      rateLimit: { max: LIMIT, windowMs: 60_000 },
      extraTokens: [
        { name: 'busy-officer', token: 'busy-token', roles: ['lea-officer'] },
        { name: 'prober', token: 'prober-token', roles: ['billing'] },
      ],
    });
  });

  after(async () => {
    await api?.close();
    await rt?.close();
  });

  it('serves a valid OpenAPI 3 document listing every route with its roles', async () => {
    const res = await api.app.inject('/openapi.json');
    assert.equal(res.statusCode, 200);
    const doc = res.json<{
      openapi: string;
      paths: Record<string, Record<string, { 'x-roles'?: string[]; security?: unknown[]; responses?: Record<string, unknown> }>>;
    }>();
    const result = await new Validator().validate(doc);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    assert.match(doc.openapi, /^3\./);
    const routes = apiRoutes(api.app);
    assert.ok(
      routes.some((r) => r.url === '/openapi.json'),
      'the document lists itself',
    );
    assert.ok(routes.length >= 12, `${routes.length} routes`);
    for (const r of routes) {
      const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${path} is in the document`);
      assert.deepEqual(op['x-roles'], [...r.roles], `${r.method} ${path} roles`);
      if (r.roles.length > 0) assert.deepEqual(op.security, [{ bearer: [] }], `${r.method} ${path} needs a bearer token`);
      // And the errors every /v1 route can give (found from outside: several listed only their success).
      if (r.roles.length > 0) for (const code of ['400', '401', '403', '429']) assert.ok(op.responses?.[code], `${r.method} ${path} lists ${code}`);
      // Its success response too, not only its errors (found from outside).
      assert.ok(
        Object.keys(op.responses ?? {}).some((code) => code.startsWith('2')),
        `${r.method} ${path} names its success response: ${Object.keys(op.responses ?? {}).join(', ')}`,
      );
    }
    assert.ok(doc.paths['/v1/lea/requests']?.['post']?.responses?.['201'], 'a law-enforcement request answers 201');
    assert.ok(doc.paths['/v1/holds']?.['post']?.responses?.['201'], 'placing a hold answers 201');
    assert.ok(doc.paths['/v1/dsar']?.['post']?.responses?.['200'], 'an access request answers 200');
    assert.deepEqual(doc.paths['/v1/lea/requests']?.['post']?.['x-roles'], ['lea-officer']);
    assert.deepEqual(doc.paths['/v1/lea/signing-key']?.['get']?.['x-roles'], ['lea-officer', 'auditor']);
    assert.deepEqual(doc.paths['/v1/dsar']?.['post']?.['x-roles'], ['dpo']);
    // Every free-text field carries the identifier check with its pattern (one format, not a list kept in each route).
    const freeTextFields: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (node === null || typeof node !== 'object') return;
      const schema = node as { pattern?: unknown; format?: unknown };
      if (schema.pattern === FREE_TEXT_PATTERN) {
        freeTextFields.push(at);
        assert.equal(schema.format, FREE_TEXT_FORMAT, `${at} has the free-text pattern without the identifier check`);
      }
      for (const [k, v] of Object.entries(node)) walk(v, `${at}/${k}`);
    };
    walk(doc.paths, '');
    for (const field of ['authority', 'case_reference', 'legal_basis', 'reason'])
      assert.ok(
        freeTextFields.some((at) => at.endsWith(`/properties/${field}`)),
        `${field} is free text: ${freeTextFields.join(', ')}`,
      );
  });

  it('limits each token: the request after the limit gets a 429 with a message, is audited, and other tokens go on', async () => {
    const busy = { authorization: 'Bearer busy-token' };
    const codes: number[] = [];
    for (let i = 0; i < LIMIT + 1; i++) codes.push((await api.app.inject({ method: 'GET', url: '/v1/lea/signing-key', headers: busy })).statusCode);
    assert.deepEqual(codes, [...Array<number>(LIMIT).fill(200), 429]);
    const limited = await api.app.inject({ method: 'GET', url: '/v1/lea/signing-key', headers: busy });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json<{ error: string }>().error, 'rate_limited');
    assert.match(limited.json<{ message: string }>().message, /at most 5 requests per 60 s/);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal(
      (await api.app.inject({ method: 'GET', url: '/v1/lea/signing-key', headers: auth('auditor') })).statusCode,
      200,
      'another token is not limited',
    );
    const entries = (await api.services.audit.page({ limit: 1000, actor: 'busy-officer' })).filter((e) => e.outcome === 'rate_limited');
    assert.equal(entries.length, 2);
    assert.equal(entries[0]!.status, 429);
    assert.equal(entries[0]!.route, '/v1/lea/signing-key');
  });

  it('limits a token flooding a route its role may not use: 403s up to the limit, then 429s (the audit trail stays bounded)', async () => {
    const prober = { authorization: 'Bearer prober-token', 'content-type': 'application/json' };
    const codes: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) codes.push((await api.app.inject({ method: 'POST', url: '/v1/holds', headers: prober, payload: '{}' })).statusCode);
    assert.deepEqual(codes, [...Array<number>(LIMIT).fill(403), 429, 429]);
  });

  it('limits callers without a valid token by address: 401s up to the limit, then 429s (the audit trail stays bounded)', async () => {
    const codes: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const headers = i % 2 === 0 ? {} : { authorization: `Bearer guess-${i}` };
      codes.push((await api.app.inject({ method: 'GET', url: '/v1/audit', headers, remoteAddress: '192.0.2.7' })).statusCode);
    }
    assert.deepEqual(codes, [...Array<number>(LIMIT).fill(401), 429, 429]);
    // Another address, and a valid token from the flooded one, are not limited by it.
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/audit', remoteAddress: '192.0.2.8' })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/audit', headers: auth('auditor'), remoteAddress: '192.0.2.7' })).statusCode, 200);
    // Paths no route matches (answered outside the routes) are counted alike.
    const probes: number[] = [];
    for (let i = 0; i < LIMIT + 1; i++) probes.push((await api.app.inject({ method: 'GET', url: `/v1/nothing-${i}`, remoteAddress: '192.0.2.9' })).statusCode);
    assert.deepEqual(probes, [...Array<number>(LIMIT).fill(401), 429]);
  });

  it('cdr lea verify passes an untouched answer and fails a changed one, naming the record and the field', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/lea/requests', payload: body, headers: auth('lea-officer') });
    assert.equal(res.statusCode, 201, res.body);
    const answer = res.json<{ records: Record<string, unknown>[]; case_reference: string }>();
    assert.equal(answer.records.length, events.length);
    const file = join(setup.dataDir, 'answer.json');
    writeFileSync(file, res.body);
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [bin, 'lea', 'verify', ...args], { env: { ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn' }, encoding: 'utf8' });
    const ok = run(file);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /OK: unchanged since it was signed/);
    assert.match(ok.stdout, /trusted key/);

    const changed = structuredClone(answer);
    changed.records[3]!['recipient'] = '+6598765432';
    writeFileSync(join(setup.dataDir, 'changed.json'), JSON.stringify(changed, null, 2));
    const bad = run(join(setup.dataDir, 'changed.json'));
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, new RegExp(`record 4 \\(cdr_id ${String(answer.records[3]!['cdr_id'])}\\): changed \\(field recipient\\)`));

    const header = { ...answer, case_reference: 'SPF-10' };
    writeFileSync(join(setup.dataDir, 'header.json'), JSON.stringify(header));
    const badHeader = run(join(setup.dataDir, 'header.json'));
    assert.equal(badHeader.status, 1);
    assert.match(badHeader.stdout, /case_reference: changed/);

    const fewer = { ...answer, records: answer.records.slice(1) };
    writeFileSync(join(setup.dataDir, 'fewer.json'), JSON.stringify(fewer));
    const removed = run(join(setup.dataDir, 'fewer.json'));
    assert.equal(removed.status, 1);
    assert.match(removed.stdout, /records: 11 in the answer, 12 signed \(records removed/);

    // Another key: refused when a trusted key is given.
    const stranger = join(setup.dataDir, 'stranger');
    const other = spawnSync(
      process.execPath,
      ['-e', "const c=require('node:crypto');process.stdout.write(c.generateKeyPairSync('ed25519').publicKey.export({type:'spki',format:'pem'}))"],
      {
        encoding: 'utf8',
      },
    );
    writeFileSync(`${stranger}.pem`, other.stdout);
    const untrusted = run(file, '--public-key', `${stranger}.pem`);
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stdout, /not a trusted key/);
  });

  it('cdr lea verify checks a streamed answer (NDJSON, CSV) against its receipt', async () => {
    /** Writes a streamed answer and its receipt; `run(f)` is `cdr lea verify f --receipt <that receipt>`. */
    const saveStreamed = (name: string, answer: string, receiptName: string, receiptBody: string) => {
      const file = join(setup.dataDir, name);
      const receiptFile = join(setup.dataDir, receiptName);
      writeFileSync(file, answer);
      writeFileSync(receiptFile, receiptBody);
      const run = (f: string) =>
        spawnSync(process.execPath, [bin, 'lea', 'verify', f, '--receipt', receiptFile], {
          env: { ...process.env, ...setup.env, CDR_LOG_LEVEL: 'warn' },
          encoding: 'utf8',
        });
      return { file, run };
    };
    for (const [accept, ext] of [
      ['application/x-ndjson', 'ndjson'],
      ['text/csv', 'csv'],
    ] as const) {
      const res = await api.app.inject({ method: 'POST', url: '/v1/lea/requests', payload: body, headers: { ...auth('lea-officer'), accept } });
      assert.equal(res.statusCode, 201);
      const receipt = await api.app.inject({ method: 'GET', url: String(res.headers['location']), headers: auth('lea-officer') });
      const { file, run } = saveStreamed(`answer.${ext}`, res.body, `receipt.${ext}.json`, receipt.body);
      const ok = run(file);
      assert.equal(ok.status, 0, `${ext}: ${ok.stdout}${ok.stderr}`);
      assert.match(ok.stdout, /not checked \(absent from the receipt\): identifier/);
      const tampered = join(setup.dataDir, `tampered.${ext}`);
      writeFileSync(
        tampered,
        res.body.replace(/"?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{3})Z"?/, (m, a: string) =>
          m.replace(
            a,
            a.replace(/\d$/, (d) => String((Number(d) + 1) % 10)),
          ),
        ),
      );
      const bad = run(tampered);
      assert.equal(bad.status, 1, ext);
      assert.match(bad.stdout, /record 1 .*changed \(field event_time, perhaps recipient, sender \(digested behind cdr_id and event_time\)\)/, ext);
      const missing = spawnSync(process.execPath, [bin, 'lea', 'verify', file], { env: { ...process.env, ...setup.env }, encoding: 'utf8' });
      assert.equal(missing.status, 2, 'a streamed answer without its receipt cannot be checked');
      assert.match(missing.stderr, /--receipt/);
    }
    // A streamed data-subject export: its receipt at GET /v1/dsar/{id} (X-Request-Id) checks it the same way.
    for (const [accept, ext] of [
      ['application/x-ndjson', 'ndjson'],
      ['text/csv', 'csv'],
    ] as const) {
      const res = await api.app.inject({
        method: 'POST',
        url: '/v1/dsar',
        payload: { identifier: body.identifier, from: body.from, to: body.to },
        headers: { ...auth('dpo'), accept },
      });
      assert.equal(res.statusCode, 200, res.body);
      const id = String(res.headers['x-request-id']);
      assert.match(id, /^dsar-/);
      assert.ok(res.body.split('\n').filter(Boolean).length > 1, 'records in the export');
      const receipt = await api.app.inject({ method: 'GET', url: `/v1/dsar/${id}`, headers: auth('dpo') });
      assert.equal(receipt.statusCode, 200, receipt.body);
      assert.equal(receipt.json<{ kind: string }>().kind, 'dsar');
      // The whole number, not a fragment: '9123' turned up by chance in a receipt's hex digests (a flaky failure in CI).
      assert.ok(!receipt.body.includes('91234567'), 'no identifier in a receipt');
      if (ext === 'csv') {
        // Another role, an unknown id (the law-enforcement route refusing it: asSent.test.ts; this file's limit is 5/min).
        assert.equal((await api.app.inject({ method: 'GET', url: `/v1/dsar/${id}`, headers: auth('auditor') })).statusCode, 403);
        assert.equal((await api.app.inject({ method: 'GET', url: '/v1/dsar/dsar-none', headers: auth('dpo') })).statusCode, 404);
      }
      const { file, run } = saveStreamed(`export.${ext}`, res.body, `export-receipt.${ext}.json`, receipt.body);
      const ok = run(file);
      assert.equal(ok.status, 0, `dsar ${ext}: ${ok.stdout}${ok.stderr}`);
      assert.match(ok.stdout, /not checked \(absent from the receipt\): .*identifier/);
      const tampered = join(setup.dataDir, `export-tampered.${ext}`);
      writeFileSync(tampered, res.body.replace(/\n[^\n]+\n$/, '\n'));
      assert.equal(run(tampered).status, 1, `dsar ${ext}: a record removed`);
    }
    // A JSON object that is no answer ({} or a receipt given as the answer) is named as such, not as a streamed answer.
    const empty = join(setup.dataDir, 'empty.json');
    writeFileSync(empty, '{}\n');
    for (const f of [empty, join(setup.dataDir, 'receipt.csv.json')]) {
      const notAnswer = spawnSync(process.execPath, [bin, 'lea', 'verify', f], { env: { ...process.env, ...setup.env }, encoding: 'utf8' });
      assert.equal(notAnswer.status, 2, notAnswer.stderr);
      assert.match(notAnswer.stderr, /is no law-enforcement answer/);
    }
  });
});
