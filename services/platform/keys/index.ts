/**
 * Key storage: the master key and the ring of month keys wrapped under it.
 */
export { checkMasterKeyFile, loadMasterKey } from './masterKey.ts';
export type { LoadedMasterKey } from './masterKey.ts';
export { destroyedAmong, MonthKeyRing } from './monthKeyRing.ts';
export { nativeSealer, sealerFactory, sealerFor, sealerInUse } from './nativeSealer.ts';
