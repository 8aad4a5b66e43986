// Builds the native parts after `npm install`, each one C++ file against the headers Node installs beside itself
// (<prefix>/include/node: N-API and the OpenSSL Node links in). No node-gyp: it would download those headers from
// nodejs.org, which an offline machine cannot reach, for a build of one file.
//
// - The sealer (native/sealer.cc → native/build/sealer.node; ADR 0040) links nothing: the OpenSSL symbols resolve in
//   the node process. Without a compiler or the headers it says so and ends well: ingest then seals in JavaScript
//   (node:crypto), with the same bytes.
// - The batch producer (native/producer.cc → native/build/producer.node; ADR 0043) links the librdkafka that
//   @confluentinc/kafka-javascript built (its headers and librdkafka.so.1, found again at load through an rpath). Where
//   that package is not built, it is not either, and the package's own binding (or kafkajs) publishes.
//
// CDR_NATIVE_SEALER=native makes a failed build of either an error (CI does, so its tests prove the native paths; the
// producer only where librdkafka was built).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'native', 'build');
const required = process.env.CDR_NATIVE_SEALER === 'native';
const skip = process.env.CDR_NATIVE_SEALER === 'js';
const compiler = process.env.CXX || 'c++';
let failed = false;

/** Says why `target` is not built (and removes one left from an earlier install, so it is not loaded instead). */
function notBuilt(target, why, fallback) {
  rmSync(target, { force: true });
  const line = `build-native: ${target.slice(root.length + 1)} not built (${why}); ${fallback}`;
  if (required) {
    console.error(`${line}, but CDR_NATIVE_SEALER=native`);
    failed = true;
  } else console.warn(line);
}

function build(source, target, compileFlags, linkFlags, fallback) {
  const args = [
    '-std=c++17',
    '-O2',
    '-fPIC',
    '-shared',
    '-fvisibility=hidden',
    '-Wall',
    '-Wextra',
    '-Werror',
    ...compileFlags,
    source,
    ...linkFlags,
    '-o',
    `${target}.tmp`,
  ];
  // Undefined symbols (N-API, OpenSSL) are the host's: allowed by default on Linux, asked for on macOS. Bound at load
  // on Linux (-z now), so a node without one of them fails the load, and `auto` falls back, instead of the process
  // dying at the first call.
  if (process.platform === 'darwin') args.splice(4, 0, '-undefined', 'dynamic_lookup');
  if (process.platform === 'linux') args.splice(4, 0, '-Wl,-z,now');
  mkdirSync(outDir, { recursive: true });
  try {
    execFileSync(compiler, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    rmSync(`${target}.tmp`, { force: true });
    notBuilt(target, `${compiler} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, fallback);
    return;
  }
  renameSync(`${target}.tmp`, target);
  console.log(`build-native: built ${target.slice(root.length + 1)} with ${compiler}`);
}

const sealer = join(outDir, 'sealer.node');
const producer = join(outDir, 'producer.node');
const sealerFallback = 'ingest seals identifiers in JavaScript (ADR 0040)';
const producerFallback = "the package's own binding publishes (ADR 0043)";
if (skip) {
  notBuilt(sealer, 'CDR_NATIVE_SEALER=js', sealerFallback);
  rmSync(producer, { force: true });
  console.warn('build-native: native/build/producer.node not built (CDR_NATIVE_SEALER=js)');
  process.exit(0);
}
const include = [process.env.CDR_NODE_INCLUDE_DIR, resolve(dirname(process.execPath), '..', 'include', 'node')].find(
  (dir) => dir && existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'openssl', 'evp.h')),
);
if (!include) {
  const why = `no node_api.h and openssl/evp.h under ${resolve(dirname(process.execPath), '..', 'include', 'node')}`;
  notBuilt(sealer, why, sealerFallback);
  notBuilt(producer, why, producerFallback);
} else {
  build(join(root, 'native', 'sealer.cc'), sealer, [`-I${include}`], [], sealerFallback);
  const rdkafka = join(root, 'node_modules', '@confluentinc', 'kafka-javascript', 'build', 'deps');
  if (existsSync(join(rdkafka, 'librdkafka.so.1')) && existsSync(join(rdkafka, 'include', 'librdkafka', 'rdkafka.h')))
    build(
      join(root, 'native', 'producer.cc'),
      producer,
      // -isystem: the library's header has warnings of its own that -Werror would refuse.
      [`-I${include}`, '-isystem', join(rdkafka, 'include'), '-pthread'],
      // Found again relative to the addon, so a checkout moved elsewhere still loads it.
      [
        `-L${rdkafka}`,
        '-l:librdkafka.so.1',
        `-Wl,-rpath,${process.platform === 'darwin' ? '@loader_path' : '$ORIGIN'}/../../node_modules/@confluentinc/kafka-javascript/build/deps`,
      ],
      producerFallback,
    );
  else {
    // Not an error even when native parts are required: without librdkafka nothing could use it (kafkajs publishes).
    rmSync(producer, { force: true });
    console.warn(`build-native: native/build/producer.node not built (no librdkafka under ${rdkafka.slice(root.length + 1)}); ${producerFallback}`);
  }
}
process.exit(failed ? 1 : 0);
