import { readFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { planTraffic } from '../../services/generator/trafficPlan.ts';
import { frameConfluent } from '../../services/shared/src/avro/cdrCodec.ts';
const brokers = readFileSync('/tmp/benchprobe/brokers', 'utf8').split(',');
const kafka = new Kafka({ brokers, logLevel: logLevel.WARN });
const admin = kafka.admin(); await admin.connect();
const N = Number(process.argv[2] ?? 200000);
const topics = ['probe', 'probe-conf'].filter(() => process.argv[3] !== 'nocreate');
if (topics.length) await admin.createTopics({ waitForLeaders: true, topics: topics.map((t) => ({ topic: t, numPartitions: 4, replicationFactor: 1 })) });
await admin.disconnect();
const p = kafka.producer({ allowAutoTopicCreation: false });
await p.connect();
const t0 = performance.now();
let a: { key: string; value: Buffer }[] = [], b: { key: string; value: Buffer }[] = [];
const inflight = new Set<Promise<unknown>>();
for (const m of planTraffic({ count: N, seed: 1, scenario: 'normal', duplicates: 0, malformed: 0, late: 0, startTime: Date.now() - 3600_000, eventsPerSecond: 1000 })) {
  a.push({ key: m.key, value: m.value });
  b.push({ key: m.key, value: m.value[0] === 0 ? m.value : frameConfluent(1, m.value) });
  if (a.length >= 10000) {
    const pr = p.sendBatch({ acks: -1, topicMessages: [{ topic: 'probe', messages: a }, { topic: 'probe-conf', messages: b }] });
    inflight.add(pr); void pr.finally(() => inflight.delete(pr));
    a = []; b = [];
    if (inflight.size >= 2) await Promise.race(inflight);
  }
}
if (a.length) await p.sendBatch({ acks: -1, topicMessages: [{ topic: 'probe', messages: a }, { topic: 'probe-conf', messages: b }] });
await Promise.all(inflight);
console.log('filled', N, 'x2 in', ((performance.now() - t0) / 1000).toFixed(1), 's');
await p.disconnect();
