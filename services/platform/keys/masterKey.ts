import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { MasterKeyConfig } from '../config/index.ts';
import { PipelineError } from '../../core/index.ts';

/**
 * The master key wraps every month key. It comes from CDR_MASTER_KEY (base64) or CDR_MASTER_KEY_FILE;
 * in the embedded development mode, when neither is set, one is generated once into
 * `<dataDir>/master.key` (mode 0600). It is never written to ClickHouse, Kafka or a log.
 */
export interface LoadedMasterKey {
  readonly key: Buffer;
  readonly source: 'env' | 'file' | 'generated-dev';
  readonly path?: string;
}

function parseKeyFile(path: string): Buffer {
  const raw = readFileSync(path);
  if (raw.length === 32) return raw;
  const decoded = Buffer.from(raw.toString('utf8').trim(), 'base64');
  if (decoded.length !== 32) throw new PipelineError('config_invalid', `CDR_MASTER_KEY_FILE: ${path} holds neither 32 raw bytes nor 32 base64-encoded bytes`);
  return decoded;
}

export function loadMasterKey(config: MasterKeyConfig, dataDir: string, allowGenerate: boolean): LoadedMasterKey {
  if (config.base64) return { key: Buffer.from(config.base64, 'base64'), source: 'env' };
  if (config.file) {
    if (!existsSync(config.file)) throw new PipelineError('config_invalid', `CDR_MASTER_KEY_FILE: ${config.file} does not exist`);
    return { key: parseKeyFile(config.file), source: 'file', path: config.file };
  }
  const path = join(dataDir, 'master.key');
  if (existsSync(path)) return { key: parseKeyFile(path), source: 'generated-dev', path };
  if (!allowGenerate) throw new PipelineError('config_invalid', 'CDR_MASTER_KEY / CDR_MASTER_KEY_FILE: no master key configured');
  mkdirSync(dirname(path), { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, source: 'generated-dev', path };
}
