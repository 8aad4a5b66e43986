// libuv's thread pool runs the embedded engine's calls (chdb's async queries and inserts), file system calls and
// librdkafka's connects. chdb holds a pool thread for a statement while it waits for its session's turn, so with
// libuv's default of 4, ingest's partitions writing side by side could take every thread and leave the API's,
// billing's and fraud's sessions queued behind them (benchmarks/results/threadpool-2026-12-04.md). The size must be
// set before the pool's first use, which in an ES module process comes before the entry module's first line: hence
// CommonJS, loaded first (bin/cdr.cjs, or `node --require ./bin/threadpool.cjs`). A value already set is kept.
'use strict';
// Also detaches stdin before the engine can read it (detach-stdin.cjs says why).
require('./detach-stdin.cjs');
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = '16';
