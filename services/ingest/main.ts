/**
 * Composition root of the ingest service as its own process (docker-compose, scale-out, crash tests):
 * config → runtime → IngestService, metrics on CDR_API_PORT. `cdr start` wires the same service in-process.
 */
import { loadConfig } from '../platform/config/config.ts';
import { openRuntime, requireKafka, requireStorage } from '../platform/runtime/runtime.ts';
import { onShutdownSignal } from '../platform/runtime/shutdown.ts';
import { buildApp } from '../api/app.ts';
import { IngestService } from './ingestService.ts';

const config = loadConfig();
const rt = await openRuntime(config, { startLocalKafka: false });
const { storage, keyRing } = requireStorage(rt);
const ingest = new IngestService({ kafka: requireKafka(rt), brokers: rt.brokers, storage, keyRing, config, log: rt.log, metrics: rt.metrics });
const app = buildApp({ log: rt.log, metrics: rt.metrics, health: () => ({ ingest: ingest.stats }) });
await app.listen({ host: config.api.host, port: config.api.port });
onShutdownSignal(rt.log, async () => {
  await ingest.stop();
  await app.close();
  await rt.close();
});
await ingest.start();
if (process.send) {
  // Tell a supervising parent (tests) how to read progress.
  setInterval(() => process.send?.({ type: 'stats', stats: ingest.stats }), 200).unref();
}
