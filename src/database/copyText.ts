import type { CopyValue } from './types.ts';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Quotes a code-supplied identifier after checking it is a plain lower-case name. */
export function quoteIdent(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain SQL identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/**
 * A string as an SQL literal, for the statements that take no bind parameters (COPY): single
 * quotes doubled (standard_conforming_strings is on in every supported server); NUL refused.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a literal cannot contain NUL');
  return `'${value.replace(/'/g, "''")}'`;
}

/** `COPY "table" ("a","b") FROM STDIN` with checked identifiers. */
export function copyStatement(table: string, columns: readonly string[], source = 'STDIN'): string {
  if (columns.length === 0) throw new Error('copyFrom needs at least one column');
  return `COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM ${source}`;
}

function field(value: CopyValue): string {
  if (value === null || value === undefined) return '\\N';
  let text: string;
  if (value instanceof Date) text = value.toISOString();
  else if (typeof value === 'boolean') text = value ? 't' : 'f';
  else text = String(value);
  // COPY text format: backslash, tab, newline and carriage return are escaped.
  return text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** Encodes rows in PostgreSQL's COPY text format; returns the text and the row count. */
export function encodeCopyText(columns: number, rows: Iterable<readonly CopyValue[]>): { text: string; count: number } {
  const lines: string[] = [];
  for (const row of rows) {
    if (row.length !== columns) throw new Error(`copyFrom row has ${row.length} values, expected ${columns}`);
    lines.push(row.map(field).join('\t'));
  }
  return { text: lines.length ? lines.join('\n') + '\n' : '', count: lines.length };
}

/**
 * The same text in pieces of `rowsPerPiece` rows, made as they are read: a COPY streamed from it
 * has the server inserting one piece while the next is encoded (and the rows, when they are
 * made lazily, computed).
 */
export function* encodeCopyPieces(columns: number, rows: Iterable<readonly CopyValue[]>, counted: { count: number }, rowsPerPiece = 2000): Generator<string> {
  let lines: string[] = [];
  for (const row of rows) {
    if (row.length !== columns) throw new Error(`copyFrom row has ${row.length} values, expected ${columns}`);
    lines.push(row.map(field).join('\t'));
    counted.count++;
    if (lines.length === rowsPerPiece) {
      yield lines.join('\n') + '\n';
      lines = [];
    }
  }
  if (lines.length) yield lines.join('\n') + '\n';
}
