import pg from 'pg';
import type { Redis } from 'ioredis';

/**
 * Seed 000's DatabaseService loop as the seed writes it, kept here as the benchmark's baseline
 * and nowhere else: RPOP one message, one INSERT per trade plus six OHLCV upserts, one UPDATE
 * per order update, one transaction (SELECT, upsert, history INSERT) per balance change, with
 * the seed's parseFloat arithmetic. Only its bucket alignment is UTC instead of local time, so
 * that it writes the same tables tradestore does.
 */
const INTERVALS: Record<string, number> = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000 };

export async function runSeedBaseline(databaseUrl: string, redis: Redis, list: string, count: number): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let processed = 0;
  try {
    while (processed < count) {
      const response = await redis.rpop(list);
      if (!response) break;
      const message = JSON.parse(response);
      const data = message.data;
      if (message.type === 'TRADE_ADDED') {
        await client.query(
          `INSERT INTO trades (id, market, buyer_order_id, seller_order_id, buyer_id, seller_id, price, quantity, is_buyer_maker, executed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [data.id, data.market, data.buyerOrderId, data.sellerOrderId, data.buyerId, data.sellerId, data.price, data.quantity, data.isBuyerMaker, new Date(data.timestamp)],
        );
        for (const [interval, ms] of Object.entries(INTERVALS)) {
          const table = `ohlcv_${interval}`;
          const bucketStart = new Date(Math.floor(data.timestamp / ms) * ms);
          await client.query(
            `INSERT INTO ${table} (market, open_time, close_time, open_price, high_price, low_price, close_price, volume, quote_volume, trade_count)
             VALUES ($1, $2, $3, $4, $4, $4, $4, $5, $6, 1)
             ON CONFLICT (market, open_time) DO UPDATE SET
               high_price = GREATEST(${table}.high_price, $4), low_price = LEAST(${table}.low_price, $4), close_price = $4,
               volume = ${table}.volume + $5, quote_volume = ${table}.quote_volume + $6, trade_count = ${table}.trade_count + 1,
               close_time = $7`,
            [data.market, bucketStart, new Date(bucketStart.getTime() + ms - 1), data.price, data.quantity, data.price * data.quantity, new Date(bucketStart.getTime() + ms - 1)],
          );
        }
      } else if (message.type === 'ORDER_UPDATE') {
        if (data.executedQty) {
          await client.query(
            `UPDATE orders SET filled_quantity = filled_quantity + $1,
               status = CASE WHEN filled_quantity + $1 >= quantity THEN 'filled' ELSE status END, updated_at = NOW(),
               filled_at = CASE WHEN filled_quantity + $1 >= quantity THEN NOW() ELSE filled_at END
             WHERE id = $2`,
            [data.executedQty, data.orderId],
          );
        } else if (data.status === 'cancelled') {
          await client.query(`UPDATE orders SET status = 'cancelled', cancelled_at = NOW(), updated_at = NOW() WHERE id = $1`, [data.orderId]);
        }
      } else if (message.type === 'BALANCE_UPDATE') {
        await client.query('BEGIN');
        try {
          const { rows } = await client.query(`SELECT available_balance, locked_balance FROM balances WHERE user_id = $1 AND asset = $2`, [data.userId, data.asset]);
          const currentAvailable = rows.length ? parseFloat(rows[0].available_balance) : 0;
          const currentLocked = rows.length ? parseFloat(rows[0].locked_balance) : 0;
          const newAvailable = currentAvailable + parseFloat(data.availableChange);
          const newLocked = currentLocked + parseFloat(data.lockedChange);
          if (newAvailable < 0 || newLocked < 0) throw new Error('Insufficient balance');
          await client.query(
            `INSERT INTO balances (user_id, asset, available_balance, locked_balance) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, asset) DO UPDATE SET available_balance = $3, locked_balance = $4, last_updated = NOW()`,
            [data.userId, data.asset, newAvailable, newLocked],
          );
          if (parseFloat(data.availableChange) !== 0) {
            await client.query(
              `INSERT INTO balance_history (user_id, asset, change_type, amount, balance_before, balance_after, reference_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7)`,
              [data.userId, data.asset, 'trade', data.availableChange, currentAvailable, newAvailable, data.referenceId],
            );
          }
          await client.query('COMMIT');
        } catch {
          await client.query('ROLLBACK');
        }
      }
      processed += 1;
    }
  } finally {
    await client.end();
  }
  return processed;
}
