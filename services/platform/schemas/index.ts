/**
 * The project's Avro schemas read from schemas/ and the codec built from them.
 */
export {
  cdrCodec,
  cdrEventType,
  decodeCdrEvent,
  decodeCdrEventIn,
  decodePseudonymised,
  encodeCdrEvent,
  encodeWith,
  framedWriter,
  loadRegisteredSchemas,
  loadSchemaFile,
  pseudonymisedType,
  useRegistryAnswers,
} from './cdrCodec.ts';
export { confluentSchemaIds, SchemaRegistryClient, type SchemaRegistrySettings } from './schemaRegistry.ts';
export {
  CDR_EVENT_SCHEMA_ID,
  CONFLUENT_MAGIC,
  frameConfluent,
  FRAUD_ALERT_SCHEMA_ID,
  PSEUDONYMISED_SCHEMA_ID,
  PSEUDONYMISED_V1_SCHEMA_ID,
} from './cdrCodec.ts';
