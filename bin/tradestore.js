#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm install` (the prepare script) or `npm run build`.
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('tradestore: dist/ is missing; run `npm run build` (npm install does it) first.');
  process.exit(2);
}
await import(entry.href);
