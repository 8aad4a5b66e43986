/**
 * A minimal Confluent-Schema-Registry stand-in on 127.0.0.1 for the ClickHouse Kafka-engine anchor
 * (format AvroConfluent resolves each schema id once with GET /schemas/ids/{id} and caches it).
 * It serves exactly the ids of schemas/registry.json, so the anchor reads the same schemas ingest does.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';

const SCHEMA_DIR = new URL('../../schemas/', import.meta.url);

export interface MiniRegistry {
  readonly url: string;
  readonly requests: number;
  close(): Promise<void>;
}

export async function startSchemaRegistry(): Promise<MiniRegistry> {
  const registry = JSON.parse(readFileSync(new URL('registry.json', SCHEMA_DIR), 'utf8')) as { schemas: { id: number; file: string }[] };
  const byId = new Map(registry.schemas.map((s) => [s.id, JSON.stringify(JSON.parse(readFileSync(new URL(s.file, SCHEMA_DIR), 'utf8')))]));
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const m = /^\/schemas\/ids\/(\d+)/.exec(req.url ?? '');
    const schema = m?.[1] ? byId.get(Number(m[1])) : undefined;
    res.setHeader('content-type', 'application/vnd.schemaregistry.v1+json');
    if (!schema) {
      res.statusCode = 404;
      res.end(JSON.stringify({ error_code: 40403, message: 'Schema not found' }));
      return;
    }
    res.end(JSON.stringify({ schema }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
