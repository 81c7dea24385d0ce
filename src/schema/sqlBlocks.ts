/**
 * Migrations are written once for both kinds of server. A block between
 * `-- @if timescaledb` and `-- @end` (with an optional `-- @else`) runs only where TimescaleDB
 * is installed; the `-- @else` part is the plain-PostgreSQL equivalent. The file's checksum
 * covers both branches, so the ledger does not depend on the server.
 */
export interface SqlFeatures {
  timescaledb: boolean;
}

const DIRECTIVE = /^\s*--\s*@(if|else|end)\b\s*(\S*)\s*$/;
const KNOWN = new Set(['timescaledb']);

export function renderSql(sql: string, features: SqlFeatures, source = 'sql'): string {
  const out: string[] = [];
  let block: { feature: string; inElse: boolean; line: number } | null = null;
  sql.split('\n').forEach((line, index) => {
    const match = DIRECTIVE.exec(line);
    if (!match) {
      const keep = !block || (features[block.feature as keyof SqlFeatures] ? !block.inElse : block.inElse);
      out.push(keep ? line : '');
      return;
    }
    const [, word, arg] = match;
    const where = `${source}:${index + 1}`;
    if (word === 'if') {
      if (block) throw new Error(`${where}: nested @if is not supported`);
      if (!arg || !KNOWN.has(arg)) throw new Error(`${where}: unknown feature ${JSON.stringify(arg)} in @if`);
      block = { feature: arg, inElse: false, line: index + 1 };
    } else if (word === 'else') {
      if (!block || block.inElse) throw new Error(`${where}: @else without @if`);
      block.inElse = true;
    } else {
      if (!block) throw new Error(`${where}: @end without @if`);
      block = null;
    }
    out.push('');
  });
  if (block) throw new Error(`${source}:${(block as { line: number }).line}: @if without @end`);
  return out.join('\n');
}
