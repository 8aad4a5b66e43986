import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { MasterKeyConfig } from '../config/index.ts';
import { PipelineError } from '../../core/index.ts';
import { makeDirectories } from '../config/directories.ts';

/**
 * The master key wraps every month key. It comes from CDR_MASTER_KEY (base64) or CDR_MASTER_KEY_FILE; in the embedded
 * development mode, when neither is set, one is generated once into the user's configuration directory
 * (`$CDR_DEV_KEY_DIR`, else `$XDG_CONFIG_HOME/cdr-pipeline/dev-keys`, else `~/.config/cdr-pipeline/dev-keys`), one
 * file per data directory, mode 0600 — never inside the data directory: a copy of the data directory (a backup, a
 * support bundle) that also carried the key would re-identify every month whose key has not yet been destroyed.
 * A key left in `<dataDir>/master.key` by an older version is moved there on first use. It is never written to
 * ClickHouse, Kafka or a log.
 */
export interface LoadedMasterKey {
  readonly key: Buffer;
  readonly source: 'env' | 'file' | 'generated-dev';
  readonly path?: string;
  /** Set when a development key was moved out of the data directory by this call. */
  readonly movedFrom?: string;
  /** Set when this call made a new development key (none was there). */
  readonly generated?: true;
}

function parseKeyFile(path: string): Buffer {
  const raw = readFileSync(path);
  if (raw.length === 32) return raw;
  const decoded = Buffer.from(raw.toString('utf8').trim(), 'base64');
  if (decoded.length !== 32) throw new PipelineError('config_invalid', `CDR_MASTER_KEY_FILE: ${path} holds neither 32 raw bytes nor 32 base64-encoded bytes`);
  return decoded;
}

/** Where the development master key of a data directory lives: outside it, named after its absolute path. */
export function devMasterKeyPath(config: Pick<MasterKeyConfig, 'devKeyDir'>, dataDir: string): string {
  const absolute = resolve(dataDir);
  const dir = config.devKeyDir ?? join(homedir(), '.config', 'cdr-pipeline', 'dev-keys');
  const name = `${basename(absolute)
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .slice(0, 40)}-${createHash('sha256').update(absolute).digest('hex').slice(0, 16)}.key`;
  return join(dir, name);
}

/** CDR_MASTER_KEY_FILE read and checked as a start would (for `loadConfigAndFiles`). */
export function checkMasterKeyFile(path: string): void {
  loadMasterKey({ base64: undefined, file: path, devKeyDir: undefined, refreshMs: 0 }, '', false);
}

export function loadMasterKey(config: MasterKeyConfig, dataDir: string, allowGenerate: boolean): LoadedMasterKey {
  if (config.base64) return { key: Buffer.from(config.base64, 'base64'), source: 'env' };
  if (config.file) {
    if (!existsSync(config.file)) throw new PipelineError('config_invalid', `CDR_MASTER_KEY_FILE: ${config.file} does not exist`);
    return { key: parseKeyFile(config.file), source: 'file', path: config.file };
  }
  const path = devMasterKeyPath(config, dataDir);
  const legacy = join(dataDir, 'master.key');
  if (existsSync(legacy)) {
    if (existsSync(path)) {
      throw new PipelineError(
        'config_invalid',
        `two development master keys: ${legacy} (inside the data directory) and ${path}. Keep the one this data was written with outside the data directory and delete the other`,
      );
    }
    makeDirectories(dirname(path), 0o700);
    renameOrCopy(legacy, path);
    return { key: parseKeyFile(path), source: 'generated-dev', path, movedFrom: legacy };
  }
  if (existsSync(path)) return { key: parseKeyFile(path), source: 'generated-dev', path };
  if (!allowGenerate) throw new PipelineError('config_invalid', 'CDR_MASTER_KEY / CDR_MASTER_KEY_FILE: no master key configured');
  makeDirectories(dirname(path), 0o700);
  const key = randomBytes(32);
  writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, source: 'generated-dev', path, generated: true };
}

/** Moves a file, across file systems too (copy, then overwrite and remove the original). */
function renameOrCopy(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch {
    const bytes = readFileSync(from);
    writeFileSync(to, bytes, { mode: 0o600, flag: 'wx' });
    writeFileSync(from, Buffer.alloc(bytes.length));
    rmSync(from);
  }
}
