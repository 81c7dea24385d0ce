import type { Queryable } from '../../database/types.ts';
import type { Entry } from './types.ts';

/**
 * Fee balance changes the engine reports without their amount (docs/FEES.md): a BALANCE_UPDATE
 * with changeType 'fee', no availableChange and the trade's id in referenceId is charged the fee
 * the user paid on that venue trade: as buyer when the asset is the market's base asset, as
 * seller when it is the quote asset (the side that receives the asset pays its fee in it).
 */
export interface FeeCharge {
  userId: string;
  asset: string;
  tradeId: string;
}

/** The available change that charges a fee: its negation ('0' for nothing). */
export const charge = (fee: string) => (/^0(\.0*)?$/.test(fee) ? '0' : `-${fee}`);

/**
 * The fee of each charge's trade, when the trade is stored: by charge index, the fees found
 * (more than one: the id names trades of several markets in that asset, and the charge is
 * ambiguous). The trade is read through its identity claim, so no chunk is searched.
 */
export async function storedTradeFees(tx: Queryable, charges: FeeCharge[]): Promise<Map<number, { market: string; fee: string }[]>> {
  const found = new Map<number, { market: string; fee: string }[]>();
  if (charges.length === 0) return found;
  const { rows } = await tx.query<{ i: string; market: string; fee: string }>(
    `SELECT w.i, t.market,
            CASE WHEN t.buyer_id = w.user_id AND m.base_asset = w.asset THEN t.trade_fee_buyer ELSE t.trade_fee_seller END::text AS fee
       FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w(user_id, asset, trade_id, i)
       JOIN markets m ON m.base_asset = w.asset OR m.quote_asset = w.asset
       JOIN ingest_identities c ON c.kind = 'trade' AND c.key = m.symbol || ' ' || w.trade_id
       JOIN trades t ON t.market = m.symbol AND t.id = w.trade_id AND t.executed_at = c.occurred_at
      WHERE (t.buyer_id = w.user_id AND m.base_asset = w.asset) OR (t.seller_id = w.user_id AND m.quote_asset = w.asset)`,
    [charges.map((c) => c.userId), charges.map((c) => c.asset), charges.map((c) => c.tradeId)],
  );
  for (const r of rows) {
    const i = Number(r.i) - 1;
    found.set(i, [...(found.get(i) ?? []), { market: r.market, fee: r.fee }]);
  }
  return found;
}

/** Keeps fee changes whose trade is not stored yet, to be charged when it arrives. */
export async function keepPending(tx: Queryable, entries: Entry<'BALANCE_UPDATE'>[]): Promise<void> {
  if (entries.length === 0) return;
  const col = <T>(f: (e: Entry<'BALANCE_UPDATE'>) => T) => entries.map(f);
  await tx.query(
    `INSERT INTO pending_fee_charges (event_id, user_id, asset, trade_id, locked_change, description, occurred_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::text[], $7::timestamptz[])
     ON CONFLICT (event_id) DO NOTHING`,
    [
      col((e) => e.event.eventId ?? e.key), col((e) => e.event.data.userId), col((e) => e.event.data.asset), col((e) => e.event.data.referenceId!),
      col((e) => e.event.data.lockedChange), col((e) => e.event.data.description ?? null), col((e) => e.event.data.timestamp ?? null),
    ],
  );
}

/** A newly stored venue trade, with the fees it was charged. */
export interface ChargedTrade {
  market: string;
  id: string;
  buyerId?: string;
  sellerId?: string;
  feeBuyer: string;
  feeSeller: string;
}

/**
 * The pending fee changes the batch's new trades resolve, as BALANCE_UPDATE entries with their
 * amount (keyed by their event id, which balance_history keeps); `ambiguous`: those the new
 * trades of several markets would resolve (refused, like an ambiguous change sent after its trade).
 */
export async function resolvePending(tx: Queryable, trades: ChargedTrade[]): Promise<{ due: Entry<'BALANCE_UPDATE'>[]; ambiguous: { key: string; reason: string }[] }> {
  if (trades.length === 0) return { due: [], ambiguous: [] };
  const { rows } = await tx.query<{
    event_id: string; user_id: string; asset: string; trade_id: string; locked_change: string; description: string | null; occurred_at: Date | null;
    market: string; base_asset: string; quote_asset: string;
  }>(
    `SELECT p.event_id, p.user_id, p.asset, p.trade_id, p.locked_change::text, p.description, p.occurred_at, m.symbol AS market, m.base_asset, m.quote_asset
       FROM pending_fee_charges p
       JOIN unnest($1::text[], $2::text[]) AS n(market, id) ON p.trade_id = n.id
       JOIN markets m ON m.symbol = n.market
      WHERE p.refused IS NULL AND (p.asset = m.base_asset OR p.asset = m.quote_asset)
      ORDER BY p.received_at, p.event_id
      FOR UPDATE OF p`,
    [trades.map((t) => t.market), trades.map((t) => t.id)],
  );
  const byTrade = new Map(trades.map((t) => [`${t.market}\u0000${t.id}`, t]));
  const matches = new Map<string, { row: (typeof rows)[number]; fee: string }[]>();
  for (const r of rows) {
    const t = byTrade.get(`${r.market}\u0000${r.trade_id}`)!;
    const fee = t.buyerId === r.user_id && r.asset === r.base_asset ? t.feeBuyer : t.sellerId === r.user_id && r.asset === r.quote_asset ? t.feeSeller : null;
    if (fee !== null) matches.set(r.event_id, [...(matches.get(r.event_id) ?? []), { row: r, fee }]);
  }
  const due: Entry<'BALANCE_UPDATE'>[] = [];
  const ambiguous: { key: string; reason: string }[] = [];
  for (const [key, found] of matches) {
    if (found.length > 1) {
      ambiguous.push({ key, reason: `fee of trade ${found[0]!.row.trade_id}: the id names ${found[0]!.row.user_id}'s trades in ${found.map((f) => f.row.market).join(', ')}` });
      continue;
    }
    const { row: r, fee } = found[0]!;
    due.push({
      key: r.event_id,
      event: {
        type: 'BALANCE_UPDATE',
        version: 1,
        eventId: null,
        key: null,
        data: {
          userId: r.user_id, asset: r.asset, availableChange: charge(fee), lockedChange: r.locked_change, referenceId: r.trade_id, changeType: 'fee',
          feeOfTrade: false, ...(r.description === null ? {} : { description: r.description }), ...(r.occurred_at === null ? {} : { timestamp: r.occurred_at }),
        },
      },
    });
  }
  return { due, ambiguous };
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
