/**
 * Loopback ports for the benchmarks: one the kernel picks, or four consecutive free ones so that
 * a SITE's `{a...b}` range can name a set of backends.
 * @module
 */

/** Whether `port` on 127.0.0.1 can be bound now. */
export function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** A port on 127.0.0.1 that was free a moment ago (bound by the kernel's choice, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Four consecutive free ports, so that sidekick's `{a...b}` range can name them all. */
export function fourPorts(): number[] {
  for (let i = 0; i < 200; i++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const ports = [base, base + 1, base + 2, base + 3];
    if (ports.every(portFree)) return ports;
  }
  throw new Error("no four consecutive free ports on 127.0.0.1");
}
