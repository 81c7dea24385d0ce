import Big from 'big.js';
import type { Queryable } from '../../database/types.ts';

/** Places of the trades' fee columns (seed 000's DECIMAL(20,8)). */
const FEE_DP = 8;

interface Feeless {
  market: string;
  price: string;
  quantity: string;
  isBuyerMaker: boolean;
  buyerId?: string;
  sellerId?: string;
  tradeFeeBuyer?: string;
  tradeFeeSeller?: string;
}

/**
 * Fills in the fees of venue trades sent without them, from trading_fees (docs/FEES.md): each
 * side pays the rate of its tier for the market, the maker's rate for the side whose order rested
 * (the buyer when isBuyerMaker), the taker's for the other; the buyer pays on the base asset it
 * receives (quantity × rate), the seller on the quote asset it receives (price × quantity × rate),
 * rounded half up to the 8 places the trade keeps. A side's tier is users.fee_tier, else
 * system_config's fees.default_tier, else 'basic'; a market without a rate for it charges 0.
 * A fee the engine sent is kept as sent. Returns each trade's two fees.
 */
export async function tradeFees<T extends Feeless>(tx: Queryable, trades: T[]): Promise<Map<T, { buyer: string; seller: string }>> {
  const fees = new Map(trades.map((t) => [t, { buyer: t.tradeFeeBuyer ?? '0', seller: t.tradeFeeSeller ?? '0' }]));
  const missing = trades.filter((t) => t.tradeFeeBuyer === undefined || t.tradeFeeSeller === undefined);
  if (!missing.length) return fees;
  const users = [...new Set(missing.flatMap((t) => [t.buyerId, t.sellerId].filter((u): u is string => Boolean(u))))];
  const { rows } = await tx.query<{ market: string; user_tier: string; maker_fee: string; taker_fee: string; default_tier: string | null }>(
    `SELECT f.market, f.user_tier, f.maker_fee::text, f.taker_fee::text, (SELECT value FROM system_config WHERE key = 'fees.default_tier') AS default_tier
       FROM trading_fees f WHERE f.market = ANY($1::text[])
     UNION ALL SELECT NULL, NULL, NULL, NULL, (SELECT value FROM system_config WHERE key = 'fees.default_tier')`,
    [[...new Set(missing.map((t) => t.market))]],
  );
  const { rows: tiers } = users.length
    ? await tx.query<{ id: string; fee_tier: string | null }>(`SELECT id, fee_tier FROM users WHERE id = ANY($1::text[]) AND fee_tier IS NOT NULL`, [users])
    : { rows: [] };
  const defaultTier = rows.at(-1)?.default_tier ?? 'basic';
  const rates = new Map(rows.filter((r) => r.market !== null).map((r) => [`${r.market}\u0000${r.user_tier}`, r]));
  const tierOf = new Map(tiers.map((t) => [t.id, t.fee_tier!]));
  const rate = (market: string, user: string | undefined, maker: boolean) => {
    const r = rates.get(`${market}\u0000${(user && tierOf.get(user)) ?? defaultTier}`);
    return r ? (maker ? r.maker_fee : r.taker_fee) : '0';
  };
  for (const t of missing) {
    const f = fees.get(t)!;
    if (t.tradeFeeBuyer === undefined) f.buyer = new Big(t.quantity).times(rate(t.market, t.buyerId, t.isBuyerMaker)).round(FEE_DP, Big.roundHalfUp).toFixed();
    if (t.tradeFeeSeller === undefined) f.seller = new Big(t.price).times(t.quantity).times(rate(t.market, t.sellerId, !t.isBuyerMaker)).round(FEE_DP, Big.roundHalfUp).toFixed();
  }
  return fees;
}
