#!/usr/bin/env node
// The `cdr` command. TypeScript sources run through tsx's ESM loader, registered here so that
// `npx cdr …` and `npm start` work straight after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../services/cli/main.ts');
