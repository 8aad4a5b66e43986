import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PipelineError, keyIdOf, type AnswerSigner } from '../../core/index.ts';
import { makeDirectories } from '../config/directories.ts';

/**
 * The Ed25519 key that signs law-enforcement answers, data-subject exports and audit checkpoints. It comes from
 * CDR_SIGNING_KEY_FILE (PKCS#8 PEM); in the embedded development mode, when unset, one is generated once into
 * `<dataDir>/signing-key.pem` (mode 0600) with its public half next to it. The private key is never logged.
 */
export interface LoadedSigner extends AnswerSigner {
  readonly publicKeyPem: string;
  readonly publicKeyObject: KeyObject;
  readonly source: 'file' | 'generated-dev';
  readonly path: string;
}

export const DEV_SIGNING_KEY = 'signing-key.pem';
export const DEV_SIGNING_PUBLIC_KEY = 'signing-key.pub.pem';

export function signerFromPrivateKey(privateKey: KeyObject, source: LoadedSigner['source'], path: string): LoadedSigner {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new PipelineError('config_invalid', `CDR_SIGNING_KEY_FILE: ${path} is not an Ed25519 key`);
  const publicKeyObject = createPublicKey(privateKey);
  const der = publicKeyObject.export({ type: 'spki', format: 'der' });
  return {
    keyId: keyIdOf(der),
    publicKey: der.toString('base64'),
    publicKeyPem: publicKeyObject.export({ type: 'spki', format: 'pem' }).toString(),
    publicKeyObject,
    source,
    path,
    sign: (data) => sign(null, data, privateKey),
  };
}

function readPrivateKey(path: string): KeyObject {
  try {
    return createPrivateKey(readFileSync(path));
  } catch (cause) {
    throw new PipelineError('config_invalid', `CDR_SIGNING_KEY_FILE: ${path} is not a readable PEM private key`, { cause });
  }
}

/** CDR_SIGNING_KEY_FILE read and checked as a start would (for `loadConfigAndFiles`). */
export function checkSigningKeyFile(path: string): void {
  loadSigner(path, '', false);
}

/** The configured signing key, or the development one in the data directory (created when `allowGenerate`). */
export function loadSigner(file: string | undefined, dataDir: string, allowGenerate: boolean): LoadedSigner {
  if (file) {
    if (!existsSync(file)) throw new PipelineError('config_invalid', `CDR_SIGNING_KEY_FILE: ${file} does not exist`);
    return signerFromPrivateKey(readPrivateKey(file), 'file', file);
  }
  const path = join(dataDir, DEV_SIGNING_KEY);
  if (existsSync(path)) return signerFromPrivateKey(readPrivateKey(path), 'generated-dev', path);
  if (!allowGenerate) throw new PipelineError('config_invalid', 'CDR_SIGNING_KEY_FILE: no signing key configured (an Ed25519 private key, PKCS#8 PEM)');
  makeDirectories(dirname(path));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  writeFileSync(join(dataDir, DEV_SIGNING_PUBLIC_KEY), publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  return signerFromPrivateKey(privateKey, 'generated-dev', path);
}

/** A public key from a PEM file holding a public key, a private key or a certificate. */
export function readPublicKey(path: string): KeyObject {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (cause) {
    throw new PipelineError('config_invalid', `cannot read the key file ${path}`, { cause });
  }
  try {
    return createPublicKey(text);
  } catch (cause) {
    throw new PipelineError('config_invalid', `${path} holds no PEM public or private key`, { cause });
  }
}

/**
 * The public key a command checks signatures against: `--public-key`, else CDR_SIGNING_KEY_FILE, else the development
 * key of the data directory; undefined when there is none (the caller decides whether the document's own key will do).
 */
export function trustedPublicKey(opts: {
  publicKey?: string | undefined;
  signingKeyFile: string | undefined;
  dataDir: string;
}): { key: KeyObject; from: string } | undefined {
  const dev = join(opts.dataDir, DEV_SIGNING_KEY);
  const from = opts.publicKey ?? opts.signingKeyFile ?? (existsSync(dev) ? dev : undefined);
  return from === undefined ? undefined : { key: readPublicKey(from), from };
}
