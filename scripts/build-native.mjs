// Builds the native sealer (native/sealer.cc → native/build/sealer.node; ADR 0040) after `npm install`.
// One C++ file against the headers Node installs beside itself (<prefix>/include/node: N-API and the OpenSSL Node links
// in), linking nothing: the OpenSSL symbols resolve in the node process. No node-gyp: it would download those headers
// from nodejs.org, which an offline machine cannot reach, for a build of one file.
//
// Without a compiler or the headers it says so and ends well: ingest then seals in JavaScript (node:crypto), with the
// same bytes. CDR_NATIVE_SEALER=native makes a failed build an error (CI does, so its tests prove the native path).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'sealer.cc');
const outDir = join(root, 'native', 'build');
const target = join(outDir, 'sealer.node');
const required = process.env.CDR_NATIVE_SEALER === 'native';
const skip = process.env.CDR_NATIVE_SEALER === 'js';

function giveUp(why) {
  // An addon left from an earlier install (another Node, say) must not be loaded in place of the one not built now.
  rmSync(target, { force: true });
  const line = `build-native: native sealer not built (${why}); ingest seals identifiers in JavaScript (ADR 0040)`;
  if (required) {
    console.error(`${line}, but CDR_NATIVE_SEALER=native`);
    process.exit(1);
  }
  console.warn(line);
  process.exit(0);
}

if (skip) giveUp('CDR_NATIVE_SEALER=js');
const include = [process.env.CDR_NODE_INCLUDE_DIR, resolve(dirname(process.execPath), '..', 'include', 'node')].find(
  (dir) => dir && existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'openssl', 'evp.h')),
);
if (!include) giveUp(`no node_api.h and openssl/evp.h under ${resolve(dirname(process.execPath), '..', 'include', 'node')}`);
const compiler = process.env.CXX || 'c++';
const args = ['-std=c++17', '-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror', `-I${include}`, source, '-o', `${target}.tmp`];
// Undefined symbols (N-API, OpenSSL) are the host's: allowed by default on Linux, asked for on macOS. Bound at load
// on Linux (-z now), so a node without one of them fails the load, and `auto` seals in JavaScript, instead of the
// process dying at the first call.
if (process.platform === 'darwin') args.splice(4, 0, '-undefined', 'dynamic_lookup');
if (process.platform === 'linux') args.splice(4, 0, '-Wl,-z,now');
mkdirSync(outDir, { recursive: true });
try {
  execFileSync(compiler, args, { stdio: ['ignore', 'inherit', 'inherit'] });
} catch (err) {
  rmSync(`${target}.tmp`, { force: true });
  giveUp(`${compiler} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
}
renameSync(`${target}.tmp`, target);
console.log(`build-native: built ${target.slice(root.length + 1)} with ${compiler} against ${include}`);
