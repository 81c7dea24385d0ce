// Writes docs/EVENTS.md from the event catalogue: `npm run docs:events`.
import { writeFileSync } from 'node:fs';
import { renderEventsDoc } from '../src/ingest/events/docs.ts';

writeFileSync(new URL('../docs/EVENTS.md', import.meta.url), renderEventsDoc());
console.log('wrote docs/EVENTS.md');
