/**
 * The Ed25519 key that signs answers, exports and audit checkpoints.
 */
export {
  checkSigningKeyFile,
  DEV_SIGNING_KEY,
  DEV_SIGNING_PUBLIC_KEY,
  loadSigner,
  readPublicKey,
  signerFromPrivateKey,
  trustedPublicKey,
} from './signingKey.ts';
export type { LoadedSigner } from './signingKey.ts';
