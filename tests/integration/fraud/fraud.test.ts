/**
 * The fraud service on the real broker and engine, fed by ingest: a range scan (one account, 300 distinct numbers
 * of one Malaysian range, mostly failing) among ordinary traffic raises one alert; the service is stopped in the
 * middle of the attack and a new one started, which continues the same alert instead of opening a second (and loses
 * nothing), also after a record dated hours ahead has arrived; when event time moves past the close delay, the alert
 * closes with the attack's first and last event times. The alert is in ClickHouse, on fraud.alerts and at GET /v1/fraud/alerts; no identifier appears in any of
 * them or in the service's logs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import kafkajs from 'kafkajs';
import pino from 'pino';
import type { Alert, CdrEvent, LearnedState } from '../../../services/core/index.ts';
import { createFraud, type Fraud } from '../../../services/fraud/createFraud.ts';
import { createIngest } from '../../../services/ingest/createIngest.ts';
import type { IngestService } from '../../../services/ingest/ingestService.ts';
import { TrafficGenerator } from '../../../services/generator/index.ts';
import { createLogger } from '../../../services/platform/observability/index.ts';
import { openRuntime, requireKafka, requireStore, type PipelineRuntime } from '../../../services/platform/runtime/index.ts';
import { encodeCdrEvent } from '../../../services/platform/schemas/index.ts';
import { auth, openTestApi, type TestApi } from '../../support/api.ts';
import { readTopic, timedStep, waitFor } from '../../support/pipelineProbe.ts';
import { testSetup } from '../../support/testEnv.ts';

const { Partitioners } = kafkajs;
const ATTACKER = 'acct-scanner';
/** An open velocity alert of a month whose identifiers the retention pass destroyed (see before()). */
const DESTROYED_ALERT = 'velocity-alert-of-a-destroyed-month';

describe('fraud service: an attack across a restart, one alert, no identifier', () => {
  const setup = testSetup();
  const logFile = join(setup.dataDir, 'fraud.log');
  let rt: PipelineRuntime;
  let ingest: IngestService;
  let fraud: Fraud;
  let api: TestApi;
  const t0 = Date.now() - 3_600_000;
  const gen = new TrafficGenerator({ seed: 4242, scenario: 'normal', startTime: t0, ratePerSecond: 5 });
  const sent: CdrEvent[] = [];
  // 300 consecutive numbers of +60 17-55x xxxx, a third of a second apart, 65% failing: a scan of one range.
  const attack: CdrEvent[] = Array.from({ length: 300 }, (_, i) => {
    const t = t0 + 120_000 + i * 333;
    return {
      ...gen.next(),
      account_id: ATTACKER,
      channel: 'sms',
      direction: 'mt',
      sender_type: 'alphanumeric',
      sender: 'CLOUDOTP',
      recipient: `+6017${String(5_500_000 + i).padStart(7, '0')}`,
      destination_country: 'MY',
      status: i % 20 < 13 ? 'failed' : 'delivered',
      error_code: i % 20 < 13 ? 'UNKNOWN_SUBSCRIBER' : '',
      event_time: t,
      submitted_at: t,
      delivered_at: i % 20 < 13 ? null : t + 900,
      duration_ms: 0,
      segments: 1,
    };
  });

  const produce = async (list: readonly CdrEvent[]): Promise<void> => {
    sent.push(...list);
    const producer = requireKafka(rt).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: setup.config.kafka.topics.raw, acks: -1, messages: list.map((e) => ({ key: e.cdr_id, value: encodeCdrEvent(e) })) });
    await producer.disconnect();
  };
  const background = (from: number, to: number, n: number): CdrEvent[] =>
    Array.from({ length: n }, (_, i) => {
      const t = from + Math.floor(((to - from) * i) / n);
      return { ...gen.next(), event_time: t, submitted_at: t, delivered_at: t + 700 };
    });
  const stored = (): number => ingest.stats.stored + ingest.stats.dlq + ingest.stats.duplicate + ingest.stats.late;
  const rangeAlerts = async () => {
    const storage = requireStore(rt);
    return storage.query<{ alert_id: string; state: string; started_at: string; ended_at: string; severity: string }>(
      `SELECT alert_id, state, toString(started_at) AS started_at, toString(ended_at) AS ended_at, severity FROM ${storage.table('fraud_alerts')} FINAL
       WHERE rule = 'range_scan' AND account_id = {a:String}`,
      { a: ATTACKER },
    );
  };
  /** The open scan alert's state in `fraud_alerts` (what a new process adopts). */
  const openScanAsStored = async () => {
    const storage = requireStore(rt);
    const rows = await storage.query<{ ended_at: number; evidence: string; risk_score: number; severity: string }>(
      `SELECT toUnixTimestamp64Milli(ended_at) AS ended_at, evidence, risk_score, severity FROM ${storage.table('fraud_alerts')} FINAL
       WHERE rule = 'range_scan' AND account_id = {a:String} AND state = 'open'`,
      { a: ATTACKER },
    );
    return rows.map((r) => ({ ...r, ended_at: Number(r.ended_at), evidence: JSON.parse(r.evidence) as Record<string, unknown> }));
  };
  let heldBeforeStop: Alert | undefined;
  let learnedAtStop: LearnedState | undefined;
  let learnedAtStart: LearnedState | undefined;
  let storedAtStop: Awaited<ReturnType<typeof openScanAsStored>> = [];
  const openFraud = async (): Promise<Fraud> => {
    const log = createLogger('info', pino.destination({ dest: logFile, sync: true, append: true }));
    return createFraud({ ...rt, log });
  };

  before(async () => {
    rt = await openRuntime(setup.config, { log: createLogger('silent') });
    ingest = createIngest(rt);
    await ingest.start();
    fraud = await openFraud();
    await fraud.service.start();
    // Ordinary traffic, then the first half of the scan.
    await produce(background(t0, t0 + 120_000, 400));
    await produce([...attack.slice(0, 140), ...background(t0 + 120_000, t0 + 170_000, 100)]);
    await waitFor('ingest stored the first half', () => stored() >= sent.length, 120_000);
    await waitFor('the scan is alerted', async () => (await rangeAlerts()).length > 0, 120_000);
    await waitFor('fraud judged the first half', () => fraud.service.stats.records >= 640, 120_000);
    // One record of another account dated 20 hours ahead (ingest accepts a day): it must not move the detector's clock
    // past the wall clock, which closed the open alert and left every later record unjudged (2026-12-02 audit).
    const ahead = Date.now() + 20 * 3_600_000;
    await produce([{ ...gen.next(), account_id: 'acct-clock-ahead', event_time: ahead, submitted_at: ahead, delivered_at: ahead + 700 }]);
    // Stop in the middle of the attack; a new process takes over.
    heldBeforeStop = fraud.service.detector.openAlerts().find((a) => a.rule === 'range_scan');
    await timedStep('stopping the first fraud process', () => fraud.service.stop());
    learnedAtStop = fraud.service.detector.learned();
    storedAtStop = await openScanAsStored();
    // Also left open: a velocity alert keyed by a token of a month two months back, whose identifiers the retention
    // pass has since destroyed (its tombstone). The new process adopts it and closes it on that account's next record.
    {
      const storage = requireStore(rt);
      const month = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() - 2, 10));
      const ts = (t: number) => new Date(t).toISOString().replace('T', ' ').replace('Z', '');
      const account = sent.find((e) => e.account_id !== ATTACKER)!.account_id;
      await storage.command(`INSERT INTO ${storage.table('fraud_alerts')}
        (alert_id, version, rule, severity, state, account_id, destination_country, range, token, token_role, risk_score, started_at, ended_at, detected_at, evidence, changed_at)
        VALUES ('${DESTROYED_ALERT}', 1, 'velocity', 'warning', 'open', '${account}', '', '', 'tok-of-a-destroyed-month', 'recipient', 40,
                '${ts(month.getTime())}', '${ts(month.getTime() + 60_000)}', '${ts(month.getTime() + 60_000)}', '{}', '${ts(month.getTime() + 60_000)}')`);
      await storage.command(
        `INSERT INTO ${storage.table('destroyed_months')} (month, destroyed_at, reason) VALUES ('${month.toISOString().slice(0, 7)}-01', now64(3), 'test')`,
      );
    }
    fraud = await openFraud();
    learnedAtStart = fraud.service.detector.learned();
    await fraud.service.start();
    await produce([...attack.slice(140), ...background(t0 + 170_000, t0 + 230_000, 100)]);
    await waitFor('ingest stored the second half', () => stored() >= sent.length, 120_000);
    await waitFor('fraud saw the second half', () => fraud.service.stats.records >= 250, 120_000);
    // Event time moves on past the close delay (120 s) with ordinary traffic.
    await produce(background(t0 + 230_000, t0 + 600_000, 300));
    await waitFor('ingest stored the rest', () => stored() >= sent.length, 120_000);
    await waitFor('the alert closed', async () => (await rangeAlerts()).some((a) => a.state === 'closed'), 120_000);
    api = await openTestApi(rt);
  });

  after(async () => {
    await timedStep('closing the API', async () => api?.close());
    await timedStep('stopping fraud', async () => fraud?.service.stop());
    await timedStep('stopping ingest', async () => ingest?.stop());
    await timedStep('closing the runtime', async () => rt?.close());
  });

  it('raised one range-scan alert for the attack across the restart, closed with the scan’s own first and last failure', async () => {
    const alerts = await rangeAlerts();
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    const a = alerts[0]!;
    assert.equal(a.state, 'closed');
    assert.equal(Date.parse(`${a.started_at.replace(' ', 'T')}Z`), attack[0]!.event_time);
    // A scan is its failures: the delivered records after its last one cannot be told from ordinary traffic to the
    // range (which, counted, made alerts end minutes after the attack; found from outside).
    const failures = attack.filter((e) => e.status === 'failed');
    assert.equal(Date.parse(`${a.ended_at.replace(' ', 'T')}Z`), failures[failures.length - 1]!.event_time);
    // And no other rule took the scan or the ordinary traffic for an attack.
    const storage = requireStore(rt);
    const others = await storage.query<{ rule: string; account_id: string }>(
      `SELECT rule, account_id FROM ${storage.table('fraud_alerts')} FINAL WHERE alert_id NOT IN ({id:String}, {planted:String})`,
      { id: a.alert_id, planted: DESTROYED_ALERT },
    );
    assert.deepEqual(others, []);
  });

  it('the second process takes up what the first had learned of every account (warm-up, usual destinations, baselines)', () => {
    // Found from outside (2026-12-06): each restart blinded the account rules for 30 min to 2 h for every known account.
    const byAccount = (s: LearnedState | undefined) => new Map((s?.accounts ?? []).map((a) => [a.account_id, a]));
    const stopped = byAccount(learnedAtStop);
    assert.ok(stopped.size >= 2, `accounts learned before the stop: ${stopped.size}`);
    const started = byAccount(learnedAtStart);
    for (const [account, a] of stopped) assert.deepEqual(started.get(account), a, account);
  });

  it('a stop in the middle of the attack leaves the alert stored as the process held it: every record it judged', async () => {
    // Found from outside (2026-12-06): an open alert was re-published at most once a minute of event time, so a clean
    // stop lost its latest activity and evidence, and the new process adopted and closed it with them missing.
    assert.ok(heldBeforeStop, 'the first process held the scan alert');
    assert.equal(storedAtStop.length, 1, JSON.stringify(storedAtStop));
    const stored = storedAtStop[0]!;
    assert.deepEqual(
      [stored.ended_at, stored.evidence, stored.risk_score, stored.severity],
      [heldBeforeStop.ended_at, heldBeforeStop.evidence, heldBeforeStop.risk_score, heldBeforeStop.severity],
    );
  });

  it('published it on fraud.alerts: opened once, closed once, in the Avro schema of the contract', async () => {
    const messages = (await readTopic(requireKafka(rt), setup.config.kafka.topics.fraudAlerts)).filter(
      (m) => String(m.headers!['alert_id']) !== DESTROYED_ALERT,
    );
    const changes = messages.map((m) => String(m.headers!['change']));
    assert.equal(changes.filter((c) => c === 'opened').length, 1, changes.join(','));
    assert.equal(changes.filter((c) => c === 'closed').length, 1, changes.join(','));
    const schema = JSON.parse(readFileSync(new URL('../../../schemas/fraud-alert-v1.avsc', import.meta.url), 'utf8')) as avro.Schema;
    const decoded = avro.Type.forSchema(schema).fromBuffer(messages[0]!.value!.subarray(5)) as Record<string, unknown>;
    assert.equal(decoded['rule'], 'range_scan');
    assert.equal(decoded['account_id'], ATTACKER);
    assert.equal(decoded['range'], '6017');
  });

  it('serves it at GET /v1/fraud/alerts with its evidence, to the fraud role only', async () => {
    const from = new Date(t0).toISOString();
    const to = new Date(t0 + 3_600_000).toISOString();
    const res = await api.app.inject({ method: 'GET', url: `/v1/fraud/alerts?from=${from}&to=${to}&rule=range_scan`, headers: auth('fraud') });
    assert.equal(res.statusCode, 200, res.body);
    // The brief's template with its blanks left blank: the defaults (the last 24 hours, every rule).
    const template = await api.app.inject({ method: 'GET', url: '/v1/fraud/alerts?from=&to=&rule=', headers: auth('fraud') });
    assert.equal(template.statusCode, 200, template.body);
    const bare = await api.app.inject({ method: 'GET', url: '/v1/fraud/alerts', headers: auth('fraud') });
    assert.deepEqual(template.json(), bare.json());
    const body = res.json<{
      alerts: {
        rule: string;
        severity: string;
        key: Record<string, string>;
        risk_score: number;
        started_at: string;
        ended_at: string;
        evidence: Record<string, number>;
      }[];
    }>();
    assert.equal(body.alerts.length, 1);
    const a = body.alerts[0]!;
    assert.deepEqual(a.key, { account_id: ATTACKER, destination_country: 'MY', range: '6017' });
    assert.ok(a.risk_score >= 50 && a.risk_score <= 100);
    assert.equal(a.started_at, new Date(attack[0]!.event_time).toISOString());
    assert.ok(a.evidence['distinct_recipients']! >= 40 && a.evidence['failure_ratio']! >= 0.4, JSON.stringify(a.evidence));
    const before = await api.app.inject({
      method: 'GET',
      url: `/v1/fraud/alerts?from=${new Date(t0 - 7_200_000).toISOString()}&to=${from}`,
      headers: auth('fraud'),
    });
    assert.equal(before.json<{ alerts: unknown[] }>().alerts.length, 0, 'selected by overlap with the activity');
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/fraud/alerts' })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/fraud/alerts', headers: auth('billing') })).statusCode, 403);
    for (const qs of ['from=yesterday', 'rule=teleport', `from=${to}&to=${from}`, 'limit=0', 'colour=red']) {
      const bad = await api.app.inject({ method: 'GET', url: `/v1/fraud/alerts?${qs}`, headers: auth('fraud') });
      assert.equal(bad.statusCode, 400, qs);
    }
    // Found from outside: a cut list was not said to be cut, `range-scan` was refused without naming the rules, raw
    // validator wording for `limit`, and `from` alone in the future blamed a `to` that was not sent.
    const one = await api.app.inject({ method: 'GET', url: `/v1/fraud/alerts?from=${from}&to=${to}&rule=range-scan&limit=1`, headers: auth('fraud') });
    assert.equal(one.statusCode, 200, one.body);
    assert.equal(one.json<{ truncated: boolean }>().truncated, false);
    assert.equal(one.json<{ alerts: { rule: string }[] }>().alerts[0]?.rule, 'range_scan');
    // Two alerts overlap a range that reaches back to the planted one: a limit of 1 cuts the list and says so.
    const wide = `from=${new Date(Date.now() - 100 * 86_400_000).toISOString()}&to=${to}`;
    const cut = await api.app.inject({ method: 'GET', url: `/v1/fraud/alerts?${wide}&limit=1`, headers: auth('fraud') });
    assert.equal(cut.statusCode, 200, cut.body);
    assert.deepEqual([cut.json<{ alerts: unknown[] }>().alerts.length, cut.json<{ truncated: boolean }>().truncated], [1, true]);
    const whole = await api.app.inject({ method: 'GET', url: `/v1/fraud/alerts?${wide}&limit=2`, headers: auth('fraud') });
    assert.deepEqual([whole.json<{ alerts: unknown[] }>().alerts.length, whole.json<{ truncated: boolean }>().truncated], [2, false]);
    const messages: [string, RegExp][] = [
      ['rule=teleport', /^rule: one of sms_pumping, .*range_scan/],
      ['limit=abc', /^limit: a whole number between 1 and 10000$/],
      [`from=${new Date(Date.now() + 86_400_000).toISOString()}`, /^from: must be before now \(without "to" the range ends now\)$/],
    ];
    for (const [qs, says] of messages) {
      const bad = await api.app.inject({ method: 'GET', url: `/v1/fraud/alerts?${qs}`, headers: auth('fraud') });
      assert.equal(bad.statusCode, 400, qs);
      assert.match(bad.json<{ message: string }>().message, says, qs);
    }
  });

  it('counts it in cdr_fraud_alerts_total{rule,severity} once, and an escalation in cdr_fraud_alert_escalations_total', async () => {
    const text = await rt.metrics.registry.getSingleMetricAsString('cdr_fraud_alerts_total');
    assert.match(text, /cdr_fraud_alerts_total\{rule="range_scan",severity="(warning|critical)"\} 1\b/);
    // Summed over severity: the alerts opened, as on the topic; escalations apart, as on the topic.
    const changes = (await readTopic(requireKafka(rt), setup.config.kafka.topics.fraudAlerts)).map((m) => String(m.headers!['change']));
    const sum = [...text.matchAll(/^cdr_fraud_alerts_total\{rule="range_scan",severity="\w+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(sum, changes.filter((c) => c === 'opened').length, changes.join(','));
    const escalations = await rt.metrics.registry.getSingleMetricAsString('cdr_fraud_alert_escalations_total');
    assert.match(escalations, new RegExp(`cdr_fraud_alert_escalations_total\\{rule="range_scan"\\} ${changes.filter((c) => c === 'escalated').length}\\b`));
    // Every rule is served from the start: a rule that never fired is a 0, not a missing series.
    const series = [...text.matchAll(/^cdr_fraud_alerts_total\{rule="(\w+)",severity="(\w+)"\} (\d+)$/gm)].map((m) => `${m[1]}/${m[2]}`);
    for (const rule of ['sms_pumping', 'range_scan', 'velocity', 'irsf', 'account_anomaly'])
      for (const severity of ['warning', 'critical']) assert.ok(series.includes(`${rule}/${severity}`), `${rule}/${severity} in ${series.join(' ')}`);
  });

  it('serves cdr_fraud_windows: the windows its detector holds after judging the scan', async () => {
    const text = await rt.metrics.registry.getSingleMetricAsString('cdr_fraud_windows');
    const held = Number(/^cdr_fraud_windows (\d+)$/m.exec(text)?.[1]);
    // At least the scanning account's own windows and its range's; at most what the records judged can have made: 11
    // for a record that is its account's first (5 of the account, 2 token windows, 4 of its range), fewer after.
    const judged = Number((fraud.service.health().detail as { records: number }).records);
    assert.ok(held >= 3 && held <= 11 * judged, `${text} (${judged} records judged)`);
  });

  it('health counts the alerts open as stored: adopted at start, moved only by durable changes', async () => {
    await waitFor('fraud is idle', () => fraud.service.status().lag === 0, 60_000);
    const storage = requireStore(rt);
    const stored = await storage.query<{ n: string }>(
      `SELECT countIf(state = 'open') AS n FROM (SELECT alert_id, argMax(state, version) AS state FROM ${storage.table('fraud_alerts')} GROUP BY alert_id)`,
    );
    const detail = fraud.service.health().detail as { open_alerts: number; alerts: number };
    // This process adopted the range-scan alert and closed it: not counted below zero, nor left open.
    assert.equal(detail.open_alerts, Number(stored[0]!.n));
    assert.equal(fraud.service.stats.open, detail.open_alerts);
  });

  it('closes an adopted alert of a destroyed month without writing or publishing its token again', async () => {
    await waitFor('the adopted alert closed', async () => {
      const storage = requireStore(rt);
      const rows = await storage.query<{ state: string }>(`SELECT state FROM ${storage.table('fraud_alerts')} FINAL WHERE alert_id = {id:String}`, {
        id: DESTROYED_ALERT,
      });
      return rows[0]?.state === 'closed';
    });
    const storage = requireStore(rt);
    const rows = await storage.query<{ state: string; token: string }>(
      `SELECT state, token FROM ${storage.table('fraud_alerts')} WHERE alert_id = {id:String} ORDER BY version`,
      { id: DESTROYED_ALERT },
    );
    // The row as it was before the destruction (the next retention pass clears it), then the close, without it.
    assert.deepEqual(rows, [
      { state: 'open', token: 'tok-of-a-destroyed-month' },
      { state: 'closed', token: '' },
    ]);
    const schema = JSON.parse(readFileSync(new URL('../../../schemas/fraud-alert-v1.avsc', import.meta.url), 'utf8')) as avro.Schema;
    const published = (await readTopic(requireKafka(rt), setup.config.kafka.topics.fraudAlerts))
      .filter((m) => String(m.headers!['alert_id']) === DESTROYED_ALERT)
      .map((m) => avro.Type.forSchema(schema).fromBuffer(m.value!.subarray(5)) as Record<string, unknown>);
    assert.deepEqual(
      published.map((d) => [d['change'], d['token'], d['token_role']]),
      [['closed', '', 'recipient']],
    );
  });

  it('carries no identifier: alerts, evidence, the topic and the logs hold none of the numbers sent', async () => {
    const needles = [...new Set(sent.flatMap((e) => [e.recipient, e.sender].filter((x) => /\d{6,}|@/.test(x)).map((x) => x.replace(/^\+/, ''))))];
    assert.ok(needles.length > 300);
    const storage = requireStore(rt);
    const rows = JSON.stringify(await storage.query(`SELECT * FROM ${storage.table('fraud_alerts')}`));
    const topic = (await readTopic(requireKafka(rt), setup.config.kafka.topics.fraudAlerts)).map((m) => m.value!.toString('latin1')).join('\n');
    const logs = readFileSync(logFile, 'utf8');
    assert.ok(logs.includes('fraud alert'), 'the service logged its alerts');
    for (const [what, text] of [
      ['fraud_alerts', rows],
      ['fraud.alerts', topic],
      ['fraud logs', logs],
    ] as const)
      assert.deepEqual(needles.filter((n) => text.includes(n)).slice(0, 3), [], what);
  });
});
