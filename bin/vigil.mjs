#!/usr/bin/env node
// The `vigil` CLI. Sources are TypeScript run through tsx's loader (no build step); see README
// "Why each dependency" for why tsx is a runtime dependency.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/src/main.ts');
process.exitCode = await main(process.argv.slice(2));
// Everything a command started is stopped by now. A handle that still holds the event loop (a bug)
// must not keep a stopped process alive, unable to restart: after 10 s, name it and exit.
setTimeout(() => {
  process.stderr.write(`vigil: exiting with handles still open: ${process.getActiveResourcesInfo().join(', ')}\n`);
  process.exit();
}, 10_000).unref();
