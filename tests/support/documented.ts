/**
 * Holds a real response to what the API's OpenAPI document says of it: the schema for its path, method, status and
 * content type (services/api/responseDocs.ts). Used by tests that call routes for their own reasons.
 */
import assert from 'node:assert/strict';
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyInstance } from 'fastify';

/** What an injected answer gives (fastify's `inject` response). */
type InjectResponse = Awaited<ReturnType<FastifyInstance['inject']>>;

interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
}

const ajv = new Ajv({ strict: false, allErrors: true });
const documents = new WeakMap<FastifyInstance, Promise<OpenApi>>();
const validators = new Map<string, ValidateFunction>();

/** The document of `app`, fetched once. */
export function openApiOf(app: FastifyInstance): Promise<OpenApi> {
  let doc = documents.get(app);
  if (!doc) {
    doc = app.inject({ method: 'GET', url: '/openapi.json' }).then((r) => r.json<OpenApi>());
    documents.set(app, doc);
  }
  return doc;
}

/** Asserts that `res`, the answer of `method route` (fastify's form: `/v1/holds/:id`), matches the document. */
export async function assertDocumented(app: FastifyInstance, method: string, route: string, res: InjectResponse): Promise<void> {
  const doc = await openApiOf(app);
  const path = route.replace(/:(\w+)/g, '{$1}');
  const type = String(res.headers['content-type']).split(';')[0]!.trim();
  const key = `${method} ${path} ${res.statusCode} ${type}`;
  let v = validators.get(key);
  if (!v) {
    const schema = doc.paths[path]?.[method.toLowerCase()]?.responses[String(res.statusCode)]?.content?.[type]?.schema;
    assert.ok(schema, `the document gives no ${type} schema for ${res.statusCode} of ${method} ${path}`);
    v = ajv.compile(schema);
    validators.set(key, v);
  }
  const body = type === 'application/json' ? (JSON.parse(res.body) as unknown) : res.body;
  assert.ok(v(body), `${method} ${route} (${type}) does not match the document: ${ajv.errorsText(v.errors)}`);
}
