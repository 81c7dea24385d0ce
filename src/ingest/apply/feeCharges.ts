import type { Queryable } from '../../database/types.ts';
import { canonicalDecimal } from './decimals.ts';
import type { Entry } from './types.ts';

/**
 * Fee balance changes the engine reports without their amount (docs/FEES.md): a BALANCE_UPDATE
 * with changeType 'fee', no availableChange, and its venue trade named by market and referenceId
 * is charged the fee the user paid on that trade: as buyer when the asset is the market's base
 * asset, as seller when it is the quote asset (the side that receives an asset pays its fee in it).
 */
export interface FeeCharge {
  userId: string;
  asset: string;
  market: string;
  tradeId: string;
}

/** The available change that charges a fee: its negation ('0' for nothing). */
export const charge = (fee: string) => (/^0(\.0*)?$/.test(fee) ? '0' : `-${fee}`);

/** Why a trade's fee cannot be charged to this user in this asset; null when it can. */
const notPayer = (c: { userId: string; asset: string; market: string; tradeId: string }) =>
  `fee of trade ${c.market} ${c.tradeId}: ${c.userId} is neither its buyer paying in the base asset nor its seller paying in the quote asset ${c.asset}`;

/**
 * The fee-charge lock of each market (a transaction advisory lock): a trade's applier holds it
 * from the moment it looks for the fee changes waiting for its new trades until it commits, and a
 * fee change's applier holds it while it looks for the trade and, not finding it, leaves the
 * change waiting. So the two never miss each other when two workers apply them at once: whichever
 * takes the lock second sees what the first committed. Taken in one order, so two batches never
 * wait for each other's market locks.
 */
export async function lockFeeMarkets(tx: Queryable, markets: string[]): Promise<void> {
  const distinct = [...new Set(markets)];
  if (distinct.length === 0) return;
  await tx.query(
    `SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('tradestore:fee-charges:' || m, 0) AS k FROM unnest($1::text[]) AS m) s ORDER BY k`,
    [distinct],
  );
}

/**
 * Each charge's trade, when it is stored (read through its identity claim, so no chunk is
 * searched): by charge index, the fee to charge, or why it cannot be charged to this user.
 */
export async function storedTradeFees(tx: Queryable, charges: FeeCharge[]): Promise<Map<number, { fee: string } | { refused: string }>> {
  const found = new Map<number, { fee: string } | { refused: string }>();
  if (charges.length === 0) return found;
  const { rows } = await tx.query<{ i: string; fee: string | null }>(
    `SELECT w.i,
            CASE WHEN t.buyer_id = w.user_id AND m.base_asset = w.asset THEN t.trade_fee_buyer
                 WHEN t.seller_id = w.user_id AND m.quote_asset = w.asset THEN t.trade_fee_seller END::text AS fee
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS w(user_id, asset, market, trade_id, i)
       JOIN markets m ON m.symbol = w.market
       JOIN ingest_identities c ON c.kind = 'trade' AND c.key = w.market || ' ' || w.trade_id
       JOIN trades t ON t.market = w.market AND t.id = w.trade_id AND t.executed_at = c.occurred_at`,
    [charges.map((c) => c.userId), charges.map((c) => c.asset), charges.map((c) => c.market), charges.map((c) => c.tradeId)],
  );
  for (const r of rows) {
    const i = Number(r.i) - 1;
    found.set(i, r.fee === null ? { refused: notPayer(charges[i]!) } : { fee: canonicalDecimal(r.fee) });
  }
  return found;
}

/** Keeps fee changes whose trade is not stored yet, to be charged when it arrives. */
export async function keepPending(tx: Queryable, entries: Entry<'BALANCE_UPDATE'>[]): Promise<void> {
  if (entries.length === 0) return;
  const col = <T>(f: (e: Entry<'BALANCE_UPDATE'>) => T) => entries.map(f);
  await tx.query(
    `INSERT INTO pending_fee_charges (event_id, user_id, asset, market, trade_id, locked_change, description, occurred_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::text[], $8::timestamptz[])
     ON CONFLICT (event_id) DO NOTHING`,
    [
      col((e) => e.event.eventId ?? e.key), col((e) => e.event.data.userId), col((e) => e.event.data.asset), col((e) => e.event.data.market!),
      col((e) => e.event.data.referenceId!), col((e) => e.event.data.lockedChange), col((e) => e.event.data.description ?? null),
      col((e) => e.event.data.timestamp ?? null),
    ],
  );
}

/** A newly stored venue trade. */
export interface StoredTrade {
  market: string;
  id: string;
}

/**
 * The pending fee changes the batch's new trades resolve, as BALANCE_UPDATE entries with their
 * amount (keyed by their event id, which balance_history keeps), and those the trade cannot pay
 * (the user is not the side that pays in the asset), with the reason. The fee and the paying
 * side come from storedTradeFees, as for a change sent after its trade. Call under lockFeeMarkets.
 */
export async function resolvePending(tx: Queryable, trades: StoredTrade[]): Promise<{ due: Entry<'BALANCE_UPDATE'>[]; refused: { key: string; reason: string }[] }> {
  if (trades.length === 0) return { due: [], refused: [] };
  const { rows } = await tx.query<{
    event_id: string; user_id: string; asset: string; market: string; trade_id: string; locked_change: string; description: string | null; occurred_at: Date | null;
  }>(
    `SELECT p.event_id, p.user_id, p.asset, p.market, p.trade_id, p.locked_change::text, p.description, p.occurred_at
       FROM pending_fee_charges p
       JOIN unnest($1::text[], $2::text[]) AS n(market, id) ON p.market = n.market AND p.trade_id = n.id
      WHERE p.refused IS NULL
      ORDER BY p.received_at, p.event_id
      FOR UPDATE OF p`,
    [trades.map((t) => t.market), trades.map((t) => t.id)],
  );
  if (rows.length === 0) return { due: [], refused: [] };
  const fees = await storedTradeFees(tx, rows.map((r) => ({ userId: r.user_id, asset: r.asset, market: r.market, tradeId: r.trade_id })));
  const due: Entry<'BALANCE_UPDATE'>[] = [];
  const refused: { key: string; reason: string }[] = [];
  rows.forEach((r, i) => {
    const found = fees.get(i);
    // Stored by this transaction, the trade is found; were it not, the change would keep waiting.
    if (!found) return;
    if ('refused' in found) {
      refused.push({ key: r.event_id, reason: found.refused });
      return;
    }
    due.push({
      key: r.event_id,
      event: {
        type: 'BALANCE_UPDATE',
        version: 1,
        eventId: null,
        key: null,
        data: {
          userId: r.user_id, asset: r.asset, availableChange: charge(found.fee), lockedChange: r.locked_change, referenceId: r.trade_id, market: r.market,
          changeType: 'fee', feeOfTrade: false, ...(r.description === null ? {} : { description: r.description }),
          ...(r.occurred_at === null ? {} : { timestamp: r.occurred_at }),
        },
      },
    });
  });
  return { due, refused };
}

/** Settles pending charges: charged ones are removed, refused ones keep the reason. */
export async function settlePending(tx: Queryable, charged: string[], refused: { key: string; reason: string }[]): Promise<void> {
  if (charged.length) await tx.query(`DELETE FROM pending_fee_charges WHERE event_id = ANY($1::text[])`, [charged]);
  if (refused.length) {
    await tx.query(
      `UPDATE pending_fee_charges p SET refused = r.reason FROM unnest($1::text[], $2::text[]) AS r(event_id, reason) WHERE p.event_id = r.event_id`,
      [refused.map((r) => r.key), refused.map((r) => r.reason)],
    );
  }
}
