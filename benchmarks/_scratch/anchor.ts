import { readFileSync, rmSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { Session } = require('chdb') as typeof import('chdb');
const brokers = readFileSync('/tmp/benchprobe/brokers', 'utf8');
const schema = readFileSync(new URL('../../schemas/cdr-event-v1.avsc', import.meta.url), 'utf8');
const srv = http.createServer((req, res) => {
  console.log('registry', req.url);
  res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
  res.end(JSON.stringify({ schema: JSON.stringify(JSON.parse(schema)) }));
});
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
const port = (srv.address() as { port: number }).port;
const dir = '/tmp/benchprobe/anchorch'; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true });
const s = new Session(dir);
const q = async (sql: string) => { const r = await s.queryAsync(sql, { format: 'TSV' }); return r.text(); };
const N = Number(process.argv[2] ?? 200000);
const consumers = Number(process.argv[3] ?? 1);
await q(`CREATE DATABASE a`);
await q(`CREATE TABLE a.target (cdr_id String, sender_token String, recipient_token String, event_time DateTime64(3,'UTC'), channel LowCardinality(String), src_partition UInt32, src_offset UInt64) ENGINE = MergeTree ORDER BY (cdr_id)`);
await q(`CREATE TABLE a.queue (
 cdr_id String, account_id String, sender String, recipient String, sender_type String, event_time DateTime64(3,'UTC'), submitted_at DateTime64(3,'UTC'), delivered_at Nullable(DateTime64(3,'UTC')),
 channel String, direction String, provider_id String, mcc Nullable(String), mnc Nullable(String), destination_country Nullable(String), ported Bool, status String, error_code Nullable(String),
 segments Int32, size_bytes Int32, duration_ms Nullable(Int64), price Int64, cost Int64, currency String, client_ip Nullable(String)
) ENGINE = Kafka SETTINGS kafka_broker_list='${brokers}', kafka_topic_list='probe-conf', kafka_group_name='anchor-${Date.now()}', kafka_format='AvroConfluent', format_avro_schema_registry_url='http://127.0.0.1:${port}', kafka_num_consumers=${consumers}, kafka_max_block_size=65536, kafka_flush_interval_ms=500, kafka_thread_per_consumer=1`);
const t0 = performance.now();
await q(`CREATE MATERIALIZED VIEW a.mv TO a.target AS SELECT cdr_id, hex(sipHash128Keyed((toUInt64(11), toUInt64(22)), sender)) AS sender_token, hex(sipHash128Keyed((toUInt64(11), toUInt64(22)), recipient)) AS recipient_token, event_time, channel, _partition AS src_partition, _offset AS src_offset FROM a.queue`);
for (;;) {
  const c = Number((await q('SELECT count() FROM a.target')).trim());
  const dt = (performance.now() - t0) / 1000;
  if (c >= N) { console.log('done', c, dt.toFixed(2), 's', Math.round(c / dt), '/s'); break; }
  if (dt > 120) { console.log('timeout', c); console.log(await q("SELECT * FROM system.kafka_consumers FORMAT Vertical").catch((e) => String(e))); break; }
  await new Promise((r) => setTimeout(r, 200));
}
console.log(process.resourceUsage().userCPUTime / 1e6, process.resourceUsage().systemCPUTime / 1e6, process.resourceUsage().maxRSS / 1024, 'MB');
await q('DROP TABLE a.mv'); await q('DROP TABLE a.queue');
s.close(); srv.close();
