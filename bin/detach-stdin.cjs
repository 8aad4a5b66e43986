// The embedded engine (chDB) reads the host process's stdin as data for an INSERT (chdb-io/chdb-core#239): with
// anything on fd 0 every INSERT fails ("Processing async inserts with both inlined and external data … is not
// supported"), or — without async inserts — takes those bytes as rows nobody wrote. And an INSERT that probes a
// socket or terminal on fd 0 can block there: a test file's process (node:test gives it a socket) hung in one
// (2026-12-05). No part of the pipeline reads stdin, so every process that may open the engine starts with fd 0 on
// /dev/null. Loaded first (bin/threadpool.cjs, bin/cdr.js, or NODE_OPTIONS from scripts/run-tests.ts), before any thread could
// open a file and take fd 0 in between.
// Main thread only: a worker thread (NODE_OPTIONS reaches those too) shares the process's fd 0 with threads already
// running, and closing it there aborts the process.
'use strict';
const { isMainThread } = require('node:worker_threads');
if (isMainThread) {
  const fs = require('node:fs');
  try {
    fs.closeSync(0);
  } catch {
    // Already closed: /dev/null takes the free fd 0 below.
  }
  const fd = fs.openSync('/dev/null', 'r');
  if (fd !== 0) fs.closeSync(fd); // fd 0 was not free: left as it was
}
