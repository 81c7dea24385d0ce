import type { Queryable } from '../../database/types.ts';
import { applyCandles, type InsertedTrade } from './candles.ts';
import { canonicalDecimal, describeFit, withScale } from './decimals.ts';
import { claimIdentities, storedIn } from './identity.ts';
import { existingKeys } from './rows.ts';
import { tradeFees } from './fees.ts';
import { applyBalances } from './balances.ts';
import { lockFeeMarkets, resolvePending, settlePending, type StoredTrade } from './feeCharges.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

type Trade = Entry<'TRADE_ADDED'>['event']['data'];
const dec = (v: string | null | undefined) => canonicalDecimal(v ?? '0');

/** What makes two messages about one trade the same trade. */
function tradeContent(d: Trade): Record<string, string> {
  return {
    price: dec(d.price),
    quantity: dec(d.quantity),
    isBuyerMaker: String(d.isBuyerMaker),
    timestamp: d.timestamp.toISOString(),
    buyerOrderId: d.buyerOrderId ?? '',
    sellerOrderId: d.sellerOrderId ?? '',
    buyerId: d.buyerId ?? '',
    sellerId: d.sellerId ?? '',
    // A fee the engine left to the fee schedule is not part of what it said about the trade.
    ...(d.tradeFeeBuyer === undefined ? {} : { tradeFeeBuyer: dec(d.tradeFeeBuyer) }),
    ...(d.tradeFeeSeller === undefined ? {} : { tradeFeeSeller: dec(d.tradeFeeSeller) }),
  };
}

const tradeKey = (d: Trade) => `${d.market} ${d.id}`;

const storedTrades = storedIn<Entry<'TRADE_ADDED'>, {
  market: string; id: string; price: string; quantity: string; is_buyer_maker: boolean; executed_at: Date; buyer_order_id: string | null;
  seller_order_id: string | null; buyer_id: string | null; seller_id: string | null; trade_fee_buyer: string; trade_fee_seller: string;
}>({
  table: 'trades',
  match: [['market', 'market'], ['id', 'id']],
  timeColumn: 'executed_at',
  select: `t.market, t.id, t.price::text, t.quantity::text, t.is_buyer_maker, t.executed_at, t.buyer_order_id, t.seller_order_id,
           t.buyer_id, t.seller_id, t.trade_fee_buyer::text, t.trade_fee_seller::text`,
  content: (r) =>
    tradeContent({
      market: r.market, id: r.id, price: r.price, quantity: r.quantity, isBuyerMaker: r.is_buyer_maker, timestamp: r.executed_at,
      buyerOrderId: r.buyer_order_id ?? undefined, sellerOrderId: r.seller_order_id ?? undefined, buyerId: r.buyer_id ?? undefined,
      sellerId: r.seller_id ?? undefined, tradeFeeBuyer: r.trade_fee_buyer, tradeFeeSeller: r.trade_fee_seller,
    }),
});

/**
 * Inserts the batch's trades in one statement. A trade id is the trade's identity within its
 * market: a repeat with the same content changes nothing, one with different content (another
 * price, another time) is refused with both versions. Only the rows actually inserted feed the candles.
 */
export async function applyTrades(tx: Queryable, entries: Entry<'TRADE_ADDED'>[], effects: Effects): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const markets = await existingKeys(tx, 'markets', entries.map((e) => e.event.data.market));
  const valid = entries.filter((e) => {
    const d = e.event.data;
    const reason = !markets.has(d.market)
      ? `unknown market ${d.market}`
      : (describeFit('price', d.price) ?? describeFit('quantity', d.quantity) ??
        (d.tradeFeeBuyer ? describeFit('tradeFeeBuyer', d.tradeFeeBuyer) : null) ??
        (d.tradeFeeSeller ? describeFit('tradeFeeSeller', d.tradeFeeSeller) : null));
    if (reason) rejected.push({ key: e.key, reason });
    return !reason;
  });
  // Fees the engine did not send come from the fee schedule (docs/FEES.md): computed first, so a
  // repeat in the same batch that states them is compared with what the first will store.
  const fees = await tradeFees(tx, valid.map((e) => e.event.data));
  const accepted = await claimIdentities(
    tx,
    'trade',
    valid.map((e) => {
      const d = e.event.data;
      const fee = fees.get(d)!;
      return {
        entry: e, key: tradeKey(d), at: d.timestamp, content: () => tradeContent(d),
        asStored: () => ({ ...tradeContent(d), tradeFeeBuyer: dec(fee.buyer), tradeFeeSeller: dec(fee.seller) }),
      };
    }),
    storedTrades,
    (i) => `trade ${i.entry.event.data.market} ${i.entry.event.data.id}`,
    rejected,
  );
  if (accepted.length === 0) return { rejected };
  const overflowing = accepted.filter((e) => {
    const f = fees.get(e.event.data)!;
    const reason = describeFit('the fee charged to the buyer', f.buyer) ?? describeFit('the fee charged to the seller', f.seller);
    if (reason) rejected.push({ key: e.key, reason });
    return reason !== null;
  });
  if (overflowing.length) {
    // Refused before anything of them is written: their identities are given back.
    await tx.query(`DELETE FROM ingest_identities WHERE kind = 'trade' AND key = ANY($1::text[])`, [overflowing.map((e) => tradeKey(e.event.data))]);
    accepted.splice(0, accepted.length, ...accepted.filter((e) => !overflowing.includes(e)));
    if (accepted.length === 0) return { rejected };
  }
  const col = (f: (d: Entry<'TRADE_ADDED'>['event']['data']) => unknown) => accepted.map((e) => f(e.event.data));
  // Each time as ISO text once: for the insert and for the publication.
  const iso = new Map(accepted.map((e) => [e.event.data, e.event.data.timestamp.toISOString()]));
  // Only the identity and the sequence come back: the rest is what was sent (times as ISO text,
  // which the driver passes as they are; Date parameters it would format one by one).
  const { rows } = await tx.query<{ market: string; id: string; sequence_number: string }>(
    `INSERT INTO trades (market, id, price, quantity, is_buyer_maker, executed_at, buyer_order_id, seller_order_id,
                         buyer_id, seller_id, trade_fee_buyer, trade_fee_seller)
     SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::boolean[], $6::timestamptz[],
                          $7::text[], $8::text[], $9::text[], $10::text[], $11::numeric[], $12::numeric[])
     ON CONFLICT DO NOTHING
     RETURNING market, id, sequence_number`,
    [
      col((d) => d.market),
      col((d) => d.id),
      col((d) => d.price),
      col((d) => d.quantity),
      col((d) => d.isBuyerMaker),
      col((d) => iso.get(d)),
      col((d) => d.buyerOrderId ?? null),
      col((d) => d.sellerOrderId ?? null),
      col((d) => d.buyerId ?? null),
      col((d) => d.sellerId ?? null),
      col((d) => fees.get(d)!.buyer),
      col((d) => fees.get(d)!.seller),
    ],
  );
  const sent = new Map(accepted.map((e) => [tradeKey(e.event.data), e.event.data]));
  const inserted = rows.map((r) => {
    const d = sent.get(`${r.market} ${r.id}`)!;
    return { d, sequence: r.sequence_number, price: withScale(d.price), quantity: withScale(d.quantity) };
  });
  effects.candles.push(
    ...(await applyCandles(
      tx,
      inserted.map(({ d, sequence, price, quantity }): InsertedTrade => ({ market: d.market, price, quantity, isBuyerMaker: d.isBuyerMaker, executedAt: d.timestamp, sequence: BigInt(sequence) })),
    )),
  );
  effects.trades.push(
    ...inserted.map(({ d, sequence, price, quantity }) => ({ market: d.market, id: d.id, sequence: String(sequence), price, quantity, isBuyerMaker: d.isBuyerMaker, executedAt: iso.get(d)! })),
  );
  await chargePendingFees(tx, inserted.map(({ d }) => ({ market: d.market, id: d.id })), effects);
  return { rejected };
}

/**
 * Fee changes the engine reported before their trade was stored (feeCharges.ts) are charged now,
 * in the trade's transaction, by the balance applier's own checks, under the markets' fee-charge
 * locks. One that would take the balance below zero, or whose user is not the side that pays in
 * its asset, is not charged and keeps the reason in pending_fee_charges (it is not an entry of
 * this batch, so it has no dead letter).
 */
async function chargePendingFees(tx: Queryable, trades: StoredTrade[], effects: Effects): Promise<void> {
  if (trades.length === 0) return;
  await lockFeeMarkets(tx, trades.map((t) => t.market));
  const { due, refused: notPayers } = await resolvePending(tx, trades);
  const { rejected } = due.length ? await applyBalances(tx, due, effects) : { rejected: [] };
  const refused = new Set(rejected.map((r) => r.key));
  await settlePending(tx, due.map((e) => e.key).filter((k) => !refused.has(k)), [...rejected, ...notPayers]);
}
