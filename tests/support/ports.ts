/**
 * A free loopback port for a server a test starts (an API, a broker and its controller on the ports above it).
 *
 * Not port 0's answer: that port is from the kernel's ephemeral range, the one every outgoing connection takes its
 * source port from. Between the probe closing it and a JVM binding it seconds later, a client connection of another
 * test file (run two at a time) may take it, and the broker fails to start. Ports below the ephemeral range are only
 * ever taken by a listener; the probe still checks the one chosen is free now.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The ports the kernel hands out to outgoing connections (Linux; 32768–60999 where it cannot be read). */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! <= high!) return { low: low!, high: high! };
  } catch {
    // not Linux
  }
  return { low: 32_768, high: 60_999 };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port outside the ephemeral range (below it, or above it where the range starts low), free now, with its
 * neighbour above free too (a broker's controller port), and not next to a port in `taken` (one the same test already
 * drew: a broker on N takes N + 1). Fails loudly when the machine leaves no such room.
 */
export async function freePort(taken: readonly number[] = []): Promise<number> {
  const { low, high } = ephemeralRange();
  const [from, to] = low - 200 > 10_000 ? [10_000, low - 200] : [high + 1, 65_000];
  if (to - from < 1000) throw new Error(`no room for test ports outside the ephemeral range ${low}-${high} (/proc/sys/net/ipv4/ip_local_port_range)`);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (taken.some((t) => Math.abs(t - port) <= 1)) continue;
    if ((await bindable(port)) && (await bindable(port + 1))) return port;
  }
  throw new Error(`no free port found between ${from} and ${to}`);
}
