import { readFileSync } from 'node:fs';

/**
 * The relations docs/COVERAGE.md promises: every `name` in the "Project table" column of its
 * seed-table rows. The test that reads this keeps the document true.
 */
export function coverageRelations(): string[] {
  const text = readFileSync(new URL('../../docs/COVERAGE.md', import.meta.url), 'utf8');
  const names = new Set<string>();
  // Only the "Tables" section maps seed tables to relations; later sections name code.
  const tables = text.slice(text.indexOf('## Tables'), text.indexOf('\n## ', text.indexOf('## Tables') + 1));
  for (const line of tables.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | seed | seed table | project table | test |
    if (cells.length < 6 || !/^\d{3}$/.test(cells[1] ?? '')) continue;
    // Names in parentheses are remarks (column names, enum values), not relations.
    const relations = (cells[3] ?? '').replace(/\([^)]*\)/g, '');
    for (const match of relations.matchAll(/`([a-z_0-9]+)`/g)) names.add(match[1]!);
  }
  return [...names].sort();
}
