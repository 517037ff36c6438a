// Worker-thread entry for ingest (see ingest-worker.ts). Registers tsx like bin/vigil.mjs: module
// hooks from the parent's --import do not reach worker threads.
import { register } from 'tsx/esm/api';

register();
await import('./ingest-worker.ts');
