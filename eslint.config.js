// Lint: typescript-eslint's type-aware recommended rules over every TypeScript source, plus the layering rules
// that keep the architecture what docs/architecture.md says it is:
//   services/core      pure logic: no I/O library, no file system, no network, nothing from above
//   services/platform  I/O building blocks: may use core, never a service
//   services/<service> composition: may use platform and core
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SERVICES = ['ingest', 'retention', 'api', 'billing', 'fraud', 'cli', 'generator'];

/** Anything that touches the outside world. */
const IO_MODULES = [
  'kafkajs',
  '@clickhouse/client',
  'chdb',
  'fastify',
  'pino',
  'prom-client',
  'node:fs',
  'fs',
  'node:fs/promises',
  'fs/promises',
  'node:child_process',
  'child_process',
  'node:net',
  'net',
  'node:http',
  'http',
  'node:https',
  'https',
  'node:dgram',
  'node:worker_threads',
  'worker_threads',
  'node:process',
];

export default tseslint.config(
  { ignores: ['node_modules/', '.cache/', '.data/', '.scratch/', 'bin/', 'eslint.config.js', 'scripts/*.js', 'scripts/*.mjs', 'benchmarks/_scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      // Fastify handlers and test callbacks are async by contract even when they do not await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // The pure core: decode, validate, normalise, tokenise, retention calendar, rating, fraud rules. It computes;
  // it never reads a file, opens a socket, logs or imports from the layers above. Tests of it need no server.
  ...[0, 1, 2].map((depth) => ({
    files: [`services/core/${'*/'.repeat(depth)}*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: IO_MODULES.map((name) => ({ name, message: 'services/core is pure logic: I/O belongs in services/platform (docs/architecture.md).' })),
          patterns: [
            { group: ['chdb/*', '@clickhouse/*', 'kafkajs/*'], message: 'services/core is pure logic: I/O belongs in services/platform.' },
            // Climbing out of services/core: depth + 1 levels of "../".
            {
              regex: `^(\\.\\./){${depth + 1},}`,
              message: 'services/core imports nothing from outside services/core (platform and the services sit above it).',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'services/core does not read the environment or the process: take values as parameters.' },
        { name: 'fetch', message: 'services/core does no I/O.' },
      ],
    },
  })),
  // The I/O building blocks serve every service and know none of them.
  ...[0, 1, 2].map((depth) => ({
    files: [`services/platform/${'*/'.repeat(depth)}*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(\\.\\./){${depth + 1}}(${SERVICES.join('|')})/`,
              message: 'services/platform must not import a service: services compose platform, not the other way round.',
            },
          ],
        },
      ],
    },
  })),
  {
    files: ['tests/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-floating-promises': 'off' },
  },
);
