#!/usr/bin/env -S node --max-semi-space-size=8
// Runs the compiled CLI (npm run build); during development use `npx tsx src/cli/main.ts`.
import { main } from '../dist/cli/main.js';

await main(process.argv);
