// Worker-thread entry for the log thread (see log-worker.ts). Registers tsx like bin/vigil.mjs:
// module hooks from the parent's --import do not reach worker threads.
import { register } from 'tsx/esm/api';

register();
await import('./log-worker.ts');
