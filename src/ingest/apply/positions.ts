import Big from 'big.js';
import type { Queryable } from '../../database/types.ts';
import type { EventOf } from '../events/catalogue.ts';
import { withoutMissingReferences, type Reference } from './rows.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

type Update = EventOf<'POSITION_UPDATE'>['data'];

/** The columns a POSITION_UPDATE may set, and the field each comes from. */
const FIELDS = [
  ['quantity', 'quantity'],
  ['entry_price', 'entryPrice'],
  ['mark_price', 'markPrice'],
  ['exit_price', 'exitPrice'],
  ['unrealized_pnl', 'unrealizedPnl'],
  ['realized_pnl', 'realizedPnl'],
  ['pnl_percentage', 'pnlPercentage'],
  ['fees', 'fees'],
  ['margin', 'margin'],
  ['isolated_margin', 'isolatedMargin'],
  ['stop_loss_price', 'stopLossPrice'],
  ['take_profit_price', 'takeProfitPrice'],
] as const satisfies readonly (readonly [string, keyof Update])[];

interface Row {
  id: string | null;
  identity: Identity;
  values: Record<string, string | null>;
  positionId: string | null;
  status: 'open' | 'closed';
  openedAt: Date;
  closedAt: Date | null;
}

interface Identity {
  userId: string | null;
  accountId: number | null;
  strategyId: string | null;
  exchange: string;
  symbol: string;
  side: string;
}

const identityOf = (d: Update): Identity => ({
  userId: d.userId ?? null,
  accountId: d.accountId ?? null,
  strategyId: d.strategyId ?? null,
  exchange: d.exchange,
  symbol: d.symbol,
  side: d.side,
});
const keyOf = (i: Identity) => JSON.stringify([i.userId, i.accountId, i.strategyId, i.exchange, i.symbol, i.side]);

const REFERENCES: Reference<Update>[] = [
  { table: 'strategies', columns: [['id', 'text']], key: (d) => (d.strategyId ? [d.strategyId] : null), describe: (d) => `unknown strategy ${d.strategyId}` },
  { table: 'users', columns: [['id', 'text']], key: (d) => (d.userId ? [d.userId] : null), describe: (d) => `unknown user ${d.userId}` },
  { table: 'accounts', columns: [['id', 'bigint']], key: (d) => (d.accountId === undefined ? null : [d.accountId]), describe: (d) => `unknown account ${d.accountId}` },
];

/**
 * POSITION_UPDATEs fold, in order, onto the open position of the same owner, instrument and
 * side (there is at most one, seed 004's rule): fields that are sent replace the stored ones,
 * status closed or quantity 0 closes it, and an update with nothing open opens a new one.
 */
export async function applyPositions(tx: Queryable, entries: Entry<'POSITION_UPDATE'>[], _effects: Effects): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const accepted = await withoutMissingReferences(tx, REFERENCES, entries, rejected);
  const identities = [...new Map(accepted.map((e) => [keyOf(identityOf(e.event.data)), identityOf(e.event.data)])).values()];
  const open = new Map<string, Row>();
  if (identities.length) {
    const { rows } = await tx.query<Record<string, unknown>>(
      `SELECT p.id::text, p.user_id, p.account_id::text, p.strategy_id, p.exchange, p.symbol, p.side, p.position_id, p.opened_at,
              ${FIELDS.map(([c]) => `p.${c}::text`).join(', ')}
         FROM positions p
         JOIN unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
              AS k(user_id, account_id, strategy_id, exchange, symbol, side)
           ON p.exchange = k.exchange AND p.symbol = k.symbol AND p.side = k.side AND p.user_id IS NOT DISTINCT FROM k.user_id
          AND p.account_id IS NOT DISTINCT FROM k.account_id AND p.strategy_id IS NOT DISTINCT FROM k.strategy_id
        WHERE p.status = 'open' ORDER BY p.id FOR UPDATE OF p`,
      [
        identities.map((i) => i.userId),
        identities.map((i) => i.accountId),
        identities.map((i) => i.strategyId),
        identities.map((i) => i.exchange),
        identities.map((i) => i.symbol),
        identities.map((i) => i.side),
      ],
    );
    for (const r of rows) {
      const identity: Identity = {
        userId: r.user_id as string | null,
        accountId: r.account_id === null ? null : Number(r.account_id),
        strategyId: r.strategy_id as string | null,
        exchange: r.exchange as string,
        symbol: r.symbol as string,
        side: r.side as string,
      };
      open.set(keyOf(identity), {
        id: r.id as string,
        identity,
        values: Object.fromEntries(FIELDS.map(([c]) => [c, r[c] as string | null])),
        positionId: r.position_id as string | null,
        status: 'open',
        openedAt: r.opened_at as Date,
        closedAt: null,
      });
    }
  }
  const touched: Row[] = [];
  const now = new Date();
  for (const entry of accepted) {
    const d = entry.event.data;
    const identity = identityOf(d);
    const key = keyOf(identity);
    const closing = d.status === 'closed' || new Big(d.quantity).eq(0);
    let row = open.get(key);
    if (!row) {
      if (closing) {
        rejected.push({ key: entry.key, reason: `no open ${d.side} position in ${d.exchange}:${d.symbol} for this owner to close` });
        continue;
      }
      row = { id: null, identity, values: {}, positionId: null, status: 'open', openedAt: d.timestamp ?? now, closedAt: null };
      open.set(key, row);
    }
    for (const [column, field] of FIELDS) {
      const value = d[field];
      if (value !== undefined) row.values[column] = value as string;
    }
    if (d.positionId) row.positionId = d.positionId;
    if (closing) {
      row.status = 'closed';
      row.closedAt = d.timestamp ?? now;
      row.values.exit_price ??= d.markPrice ?? null;
      open.delete(key);
    }
    if (!touched.includes(row)) touched.push(row);
  }
  const updates = touched.filter((r) => r.id !== null);
  const inserts = touched.filter((r) => r.id === null);
  const valueArrays = (rows: Row[]) => FIELDS.map(([c]) => rows.map((r) => r.values[c] ?? null));
  if (updates.length) {
    await tx.query(
      `UPDATE positions p SET ${FIELDS.map(([c], i) => `${c} = u.c${i}`).join(', ')},
              position_id = coalesce(u.position_id, p.position_id), status = u.status, closed_at = u.closed_at, updated_at = now()
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], ${FIELDS.map((_, i) => `$${i + 5}::numeric[]`).join(', ')})
              AS u(id, position_id, status, closed_at, ${FIELDS.map((_, i) => `c${i}`).join(', ')})
        WHERE p.id = u.id`,
      [updates.map((r) => r.id), updates.map((r) => r.positionId), updates.map((r) => r.status), updates.map((r) => r.closedAt), ...valueArrays(updates)],
    );
  }
  if (inserts.length) {
    await tx.query(
      `INSERT INTO positions (user_id, account_id, strategy_id, exchange, symbol, side, position_id, status, opened_at, closed_at,
                              ${FIELDS.map(([c]) => c).join(', ')})
       SELECT u.user_id, u.account_id, u.strategy_id, u.exchange, u.symbol, u.side, u.position_id, u.status, u.opened_at, u.closed_at,
              ${FIELDS.map(([c], i) => (['quantity', 'entry_price'].includes(c) ? `u.c${i}` : `coalesce(u.c${i}, ${defaultOf(c)})`)).join(', ')}
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::timestamptz[], $10::timestamptz[], ${FIELDS.map((_, i) => `$${i + 11}::numeric[]`).join(', ')})
              AS u(user_id, account_id, strategy_id, exchange, symbol, side, position_id, status, opened_at, closed_at,
                   ${FIELDS.map((_, i) => `c${i}`).join(', ')})`,
      [
        inserts.map((r) => r.identity.userId),
        inserts.map((r) => r.identity.accountId),
        inserts.map((r) => r.identity.strategyId),
        inserts.map((r) => r.identity.exchange),
        inserts.map((r) => r.identity.symbol),
        inserts.map((r) => r.identity.side),
        inserts.map((r) => r.positionId),
        inserts.map((r) => r.status),
        inserts.map((r) => r.openedAt),
        inserts.map((r) => r.closedAt),
        ...valueArrays(inserts),
      ],
    );
  }
  return { rejected };
}

/** Columns that are NOT NULL with a default keep that default when a new position does not send them. */
function defaultOf(column: string): string {
  return ['unrealized_pnl', 'realized_pnl', 'fees', 'margin', 'isolated_margin'].includes(column) ? '0' : 'NULL';
}
