import type { Database, Queryable } from '../database/types.ts';

/** Reads a user's rows only (migrations 007, 018, 021). */
export const ACCOUNT_READER_ROLE = 'tradestore_account_reader';
/** Changes a user's own strategies and backtests, and writes their audit rows (migration 021). */
export const ACCOUNT_WRITER_ROLE = 'tradestore_account_writer';
/** Reads every row of every table, and changes nothing (migration 021). */
export const ADMIN_READER_ROLE = 'tradestore_admin_reader';

/**
 * The database as a role of row-level security (docs/SECURITY.md): every statement, and every
 * transaction, runs in a transaction that switches to `role` with tradestore.user_id set to
 * `userId`, so a query that forgot its user filter still sees only what the role's policies let
 * through. Where the server cannot enforce it (the embedded database) it is the database itself.
 */
export function scopedDatabase(db: Database, role: typeof ACCOUNT_READER_ROLE | typeof ACCOUNT_WRITER_ROLE | typeof ADMIN_READER_ROLE, userId: string | null): Database {
  if (!db.capabilities.rowLevelSecurity) return db;
  const inScope = <T>(fn: (tx: Queryable) => Promise<T>) =>
    db.transaction(async (tx) => {
      await tx.query(`SELECT set_config('tradestore.user_id', $1, true)`, [userId ?? '']);
      await tx.exec(`SET LOCAL ROLE ${role}`);
      return fn(tx);
    });
  return {
    backend: db.backend,
    get capabilities() {
      return db.capabilities;
    },
    refreshCapabilities: () => db.refreshCapabilities(),
    query: (sql, params) => inScope((tx) => tx.query(sql, params)),
    exec: (sql) => inScope((tx) => tx.exec(sql)),
    copyFrom: (table, columns, rows) => inScope((tx) => tx.copyFrom(table, columns, rows)),
    copyTo: (query, options, write) => inScope((tx) => tx.copyTo(query, options, write)),
    copyIn: (table, columns, options, data) => inScope((tx) => tx.copyIn(table, columns, options, data)),
    transaction: inScope,
    // Session-level work (advisory locks held across statements) has no place in a scoped read.
    session: (fn) => inScope(fn),
    close: async () => {},
  };
}
