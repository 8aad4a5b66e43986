// Adds the lock-file entries of optional per-platform packages that this machine's registry does not serve
// (chdb's darwin and linux-arm64 libraries), so `npm ci` accepts the lock everywhere. npm ci insists that every
// optional dependency appears in the lock; the entries carry os/cpu, so npm skips them on other platforms and
// never fetches them here. Run after any `npm install` that rewrote package-lock.json:
//   node scripts/complete-lock.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const PLATFORM = {
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
};

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const added = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key]) continue;
    const platform = Object.entries(PLATFORM).find(([suffix]) => dep.endsWith(suffix));
    if (!platform) throw new Error(`${path}: optional dependency ${dep} is missing from the lock and is not a known platform package`);
    // Keys in the order npm writes them, so that a later `npm install` leaves the entry as it is.
    const fields = { ...platform[1], license: entry.license, optional: true };
    lock.packages[key] = { version, ...Object.fromEntries(Object.entries(fields).sort(([a], [b]) => a.localeCompare(b))) };
    added.push(`${dep}@${version}`);
  }
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(added.length ? `added to the lock: ${added.join(', ')}\n` : 'lock already complete\n');
