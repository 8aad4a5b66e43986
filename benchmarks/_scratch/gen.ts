import { planTraffic } from '../../services/generator/trafficPlan.ts';
const t0 = performance.now();
let n = 0, bytes = 0, plain = 0;
for (const m of planTraffic({ count: 200_000, seed: 1, scenario: 'normal', duplicates: 0, malformed: 0, late: 0, startTime: Date.now() - 3600_000, eventsPerSecond: 1000 })) { n++; bytes += m.value.length; if (m.value[0] !== 0) plain++; }
const dt = performance.now() - t0;
console.log({ n, perSec: Math.round(n / dt * 1000), avgBytes: bytes / n, plain });
