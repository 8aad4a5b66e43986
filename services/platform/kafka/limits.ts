/**
 * Size limits of what the pipeline publishes, below the broker's default `message.max.bytes` (1 MiB per record
 * batch): a produce request carries at most SLICE_BYTES (before compression), and no single message may exceed
 * MAX_MESSAGE_BYTES — larger dead letters go to the DLQ as stubs (deadLetters.ts).
 */
export const MAX_MESSAGE_BYTES = 900 * 1024;
export const SLICE_BYTES = 768 * 1024;
export const PUBLISH_SLICE = 2000;
