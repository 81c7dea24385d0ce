import type { Queryable } from '../../database/types.ts';
import { applyCandles, type InsertedTrade } from './candles.ts';
import { describeFit } from './decimals.ts';
import { existingKeys } from './rows.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

/**
 * Inserts the batch's trades in one statement. A trade that is already stored (same market,
 * id and time) is skipped by ON CONFLICT, and only the rows actually inserted feed the candles.
 */
export async function applyTrades(tx: Queryable, entries: Entry<'TRADE_ADDED'>[], effects: Effects): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const markets = await existingKeys(tx, 'markets', entries.map((e) => e.event.data.market));
  const accepted = entries.filter((e) => {
    const d = e.event.data;
    const reason = !markets.has(d.market)
      ? `unknown market ${d.market}`
      : (describeFit('price', d.price) ?? describeFit('quantity', d.quantity) ??
        (d.tradeFeeBuyer ? describeFit('tradeFeeBuyer', d.tradeFeeBuyer) : null) ??
        (d.tradeFeeSeller ? describeFit('tradeFeeSeller', d.tradeFeeSeller) : null));
    if (reason) rejected.push({ key: e.key, reason });
    return !reason;
  });
  if (accepted.length === 0) return { rejected };
  const col = (f: (d: Entry<'TRADE_ADDED'>['event']['data']) => unknown) => accepted.map((e) => f(e.event.data));
  const { rows } = await tx.query<{
    market: string;
    id: string;
    price: string;
    quantity: string;
    is_buyer_maker: boolean;
    executed_at: Date;
    sequence_number: string;
  }>(
    `INSERT INTO trades (market, id, price, quantity, is_buyer_maker, executed_at, buyer_order_id, seller_order_id,
                         buyer_id, seller_id, trade_fee_buyer, trade_fee_seller)
     SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::boolean[], $6::timestamptz[],
                          $7::text[], $8::text[], $9::text[], $10::text[], $11::numeric[], $12::numeric[])
     ON CONFLICT DO NOTHING
     RETURNING market, id, price::text, quantity::text, is_buyer_maker, executed_at, sequence_number`,
    [
      col((d) => d.market),
      col((d) => d.id),
      col((d) => d.price),
      col((d) => d.quantity),
      col((d) => d.isBuyerMaker),
      col((d) => d.timestamp),
      col((d) => d.buyerOrderId ?? null),
      col((d) => d.sellerOrderId ?? null),
      col((d) => d.buyerId ?? null),
      col((d) => d.sellerId ?? null),
      col((d) => d.tradeFeeBuyer ?? '0'),
      col((d) => d.tradeFeeSeller ?? '0'),
    ],
  );
  const inserted: InsertedTrade[] = rows.map((r) => ({
    market: r.market,
    price: r.price,
    quantity: r.quantity,
    isBuyerMaker: r.is_buyer_maker,
    executedAt: r.executed_at,
    sequence: BigInt(r.sequence_number),
  }));
  effects.candles.push(...(await applyCandles(tx, inserted)));
  effects.trades.push(
    ...rows.map((r) => ({ market: r.market, id: r.id, sequence: String(r.sequence_number), price: r.price, quantity: r.quantity, isBuyerMaker: r.is_buyer_maker, executedAt: r.executed_at })),
  );
  return { rejected };
}
