/**
 * `npm run bench:seal` — cost of sealing one frame event (the gateway's per-message recording
 * work): the native sealer, the JS fast path and the generic sealer, interleaved in one run.
 */
import { SessionChain } from './chain.ts';
import { nativeSealer } from './native.ts';

const gw = { gateway_id: 'gw-local', gateway_version: '0.1.0' };
const data = Buffer.alloc(60, 1); // a small DataRow-sized message
const id = '91b25c3c-7621-4cf8-8814-98fad6cbad40';
const native = new SessionChain(id, gw);
const fast = new SessionChain(id, gw, { sealer: 'js' });
const generic = new SessionChain(id, gw, { sealer: 'js' });
if (!native.native) console.log(`(the native sealer is not in use: ${nativeSealer.reason}; its row repeats the JS fast path)`);
const paths = {
  native: () => native.frame('s2c', 'D', data),
  fast: () => fast.frame('s2c', 'D', data),
  generic: () => generic.next({ type: 'frame', version: 1, direction: 's2c', msg_type: 'D', data }),
};
const N = 100_000;
const results: Record<string, number[]> = { native: [], fast: [], generic: [] };
for (const fn of Object.values(paths)) for (let i = 0; i < 20_000; i++) fn(); // warm up
for (let round = 0; round < 5; round++) {
  for (const [name, fn] of Object.entries(paths)) {
    const t = performance.now();
    for (let i = 0; i < N; i++) fn();
    results[name]!.push(((performance.now() - t) * 1000) / N);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const n = median(results.native!);
const f = median(results.fast!);
const g = median(results.generic!);
console.log(`seal one 60-byte frame, median of 5 interleaved rounds × ${N}:`);
console.log(`  native sealer (SessionChain.frame)         ${n.toFixed(2)} µs`);
console.log(`  JS fast path (SessionChain.frame, js)      ${f.toFixed(2)} µs`);
console.log(`  generic (SessionChain.next)                ${g.toFixed(2)} µs`);
console.log(`  JS fast / native                           ${(f / n).toFixed(1)}×`);
