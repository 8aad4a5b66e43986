/**
 * The wiring behind every composition root: open what a process needs, close it in reverse, stop gracefully.
 */
export { openRuntime, requireKafka, requireStorage, requireStore } from './runtime.ts';
export type { PipelineRuntime, Runtime, RuntimeConfig, RuntimeOptions } from './runtime.ts';
export { onShutdownSignal } from './shutdown.ts';
export type { Shutdown } from './shutdown.ts';
export { startTsWorker } from './tsWorker.ts';
export { keepPrivate, permissionWarning } from './privacy.ts';
export { startService } from './service.ts';
export { DEFAULT_SLICE_MS, EventLoopSlice } from './eventLoopSlice.ts';
