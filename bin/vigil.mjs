#!/usr/bin/env node
// The `vigil` CLI. Sources are TypeScript run through tsx's loader (no build step); see README
// "Why each dependency" for why tsx is a runtime dependency.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/src/main.ts');
process.exitCode = await main(process.argv.slice(2));
