/**
 * `npm run bench:seal` — cost of sealing one frame event (the gateway's per-message recording
 * work), the fast path next to the generic sealer, interleaved in one run.
 */
import { SessionChain } from './chain.ts';

const gw = { gateway_id: 'gw-local', gateway_version: '0.1.0' };
const data = Buffer.alloc(60, 1); // a small DataRow-sized message
const fast = new SessionChain('91b25c3c-7621-4cf8-8814-98fad6cbad40', gw);
const generic = new SessionChain('91b25c3c-7621-4cf8-8814-98fad6cbad40', gw);
const paths = {
  fast: () => fast.frame('s2c', 'D', data),
  generic: () => generic.next({ type: 'frame', version: 1, direction: 's2c', msg_type: 'D', data }),
};
const N = 100_000;
const results: Record<string, number[]> = { fast: [], generic: [] };
for (const fn of Object.values(paths)) for (let i = 0; i < 20_000; i++) fn(); // warm up
for (let round = 0; round < 5; round++) {
  for (const [name, fn] of Object.entries(paths)) {
    const t = performance.now();
    for (let i = 0; i < N; i++) fn();
    results[name]!.push(((performance.now() - t) * 1000) / N);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = median(results.fast!);
const g = median(results.generic!);
console.log(`seal one 60-byte frame, median of 5 interleaved rounds × ${N}:`);
console.log(`  fast path (SessionChain.frame)  ${f.toFixed(2)} µs`);
console.log(`  generic (SessionChain.next)     ${g.toFixed(2)} µs`);
console.log(`  generic / fast                  ${(g / f).toFixed(1)}×`);
