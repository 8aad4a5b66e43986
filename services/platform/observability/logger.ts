import pino, { type Logger, type DestinationStream } from 'pino';

/**
 * Central logger. Redaction is configured here once: any field that could carry an identifier, a key
 * or a token mapping is censored wherever it appears, so a careless `log.info({ event })` leaks nothing.
 * Code must still never put identifiers into message strings; a test scans the logs for them.
 */
export const REDACTED_PATHS = [
  'sender',
  'recipient',
  'identifier',
  'value',
  'msisdn',
  'email',
  'token',
  'tokens',
  'key',
  'masterKey',
  'wrappedKey',
  'client_ip',
  '*.sender',
  '*.recipient',
  '*.identifier',
  '*.value',
  '*.msisdn',
  '*.email',
  '*.token',
  '*.tokens',
  '*.key',
  '*.masterKey',
  '*.wrappedKey',
  '*.client_ip',
  '*.*.sender',
  '*.*.recipient',
  '*.*.identifier',
  '*.*.value',
  '*.*.token',
  '*.*.key',
  'sender_token',
  'recipient_token',
  '*.sender_token',
  '*.recipient_token',
  'password',
  '*.password',
  '*.*.password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
];

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'cdr-pipeline' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
