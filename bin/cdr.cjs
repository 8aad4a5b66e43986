#!/usr/bin/env node
// The `cdr` command's entry: sets libuv's thread pool size (threadpool.cjs) before any ES module loads, then runs
// bin/cdr.js, the command itself. CommonJS because an ES module entry is too late for the pool size.
'use strict';
require('./threadpool.cjs');
import('./cdr.js').catch((err) => {
  console.error(err);
  process.exit(1);
});
