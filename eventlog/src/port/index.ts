export { serveEventLog } from './owner.ts';
export { PortEventLog } from './worker.ts';
