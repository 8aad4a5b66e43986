import { readFileSync } from 'node:fs';
import type { SASLOptions } from 'kafkajs';
import { PipelineError } from '../../core/index.ts';
import type { KafkaSecurityConfig } from '../config/config.ts';

/**
 * TLS and SASL options for kafkajs from the configuration (docs/operations.md, "Security"): certificate files and a
 * password file are read here, once, so that the publisher thread gets plain values. Plain data, so it crosses to
 * worker threads as it is.
 */
export interface KafkaClientSecurity {
  readonly ssl?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } | true;
  readonly sasl?: SASLOptions;
}

function read(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new PipelineError('config_invalid', `${variable}: cannot read ${path}`, { cause });
  }
}

/**
 * The files the Kafka security variables name, read as the client will read them: for `loadConfigAndFiles`, so that a
 * missing one is named with every other problem before anything starts (found from outside: `KAFKA_SSL_CA_FILE` was
 * named alone, after the broker and the engine had started).
 */
export const KAFKA_FILE_CHECKS: Readonly<Record<string, (path: string) => unknown>> = {
  KAFKA_SSL_CA_FILE: (path) => read(path, 'KAFKA_SSL_CA_FILE'),
  KAFKA_SSL_CERT_FILE: (path) => read(path, 'KAFKA_SSL_CERT_FILE'),
  KAFKA_SSL_KEY_FILE: (path) => read(path, 'KAFKA_SSL_KEY_FILE'),
  KAFKA_SASL_PASSWORD_FILE: (path) => read(path, 'KAFKA_SASL_PASSWORD_FILE'),
};

export function kafkaClientSecurity(s: KafkaSecurityConfig | undefined): KafkaClientSecurity {
  if (!s) return {};
  const out: { ssl?: KafkaClientSecurity['ssl']; sasl?: SASLOptions } = {};
  if (s.ssl) {
    out.ssl = {
      ...(s.ssl.caFile ? { ca: read(s.ssl.caFile, 'KAFKA_SSL_CA_FILE') } : {}),
      ...(s.ssl.certFile ? { cert: read(s.ssl.certFile, 'KAFKA_SSL_CERT_FILE') } : {}),
      ...(s.ssl.keyFile ? { key: read(s.ssl.keyFile, 'KAFKA_SSL_KEY_FILE') } : {}),
      rejectUnauthorized: s.ssl.rejectUnauthorized,
    };
  }
  if (s.sasl) {
    const password = s.sasl.password ?? read(s.sasl.passwordFile!, 'KAFKA_SASL_PASSWORD_FILE').trim();
    out.sasl = { mechanism: s.sasl.mechanism, username: s.sasl.username, password };
  }
  return out;
}
