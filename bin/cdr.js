#!/usr/bin/env node
// The `cdr` command. TypeScript sources run through tsx's ESM loader, registered here so that
// `npx cdr …` and `npm start` work straight after `npm install` with no build step.
// Stdin goes to /dev/null first (detach-stdin.cjs says why) for `node bin/cdr.js …` run directly; bin/cdr.cjs has
// done it already. Imports are evaluated in order, after every module is loaded, so no loader read is in flight here.
import './detach-stdin.cjs';
import { register } from 'tsx/esm/api';

register();
await import('../services/cli/main.ts');
