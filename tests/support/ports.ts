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

/** The first port the kernel hands out to outgoing connections (Linux; 32768 where it cannot be read). */
function ephemeralFloor(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    return Number.isInteger(n) && n > 12_000 ? n : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port between 10000 and the ephemeral range, free now, and with room for a controller port above it. */
export async function freePort(): Promise<number> {
  const top = ephemeralFloor() - 200;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (top - 10_000));
    if (await bindable(port)) return port;
  }
  throw new Error('no free port found below the ephemeral range');
}
