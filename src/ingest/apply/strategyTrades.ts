import Big from 'big.js';
import type { Queryable } from '../../database/types.ts';
import type { EventOf } from '../events/catalogue.ts';
import { existingKeys } from './rows.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

type Opened = EventOf<'STRATEGY_TRADE_OPENED'>['data'];
type Closed = EventOf<'STRATEGY_TRADE_CLOSED'>['data'];

interface Trade {
  id: string;
  strategyId: string;
  side: string;
  entryPrice: string;
  quantity: string;
  fees: string;
  entryTime: Date;
  status: string;
  isNew: boolean;
  opened?: Opened;
  close?: { exitPrice: string; exitTime: Date; exitReason: string | null; exitSignal: string | null; exitTag: string | null; fees: string; pnl: string; pnlPercent: string };
}

/**
 * Seed 002's round trips. Opening and closing share an ordering key and are applied together,
 * in order, so a trade opened and closed in the same batch works. P&L is computed exactly
 * (buy: (exit − entry) × quantity − fees; sell: (entry − exit) × quantity − fees) unless the
 * message gives it, and the strategy's counters (trades, winners, total P&L, max drawdown) move
 * with each close.
 */
export async function applyStrategyTrades(
  tx: Queryable,
  entries: Entry<'STRATEGY_TRADE_OPENED' | 'STRATEGY_TRADE_CLOSED'>[],
  effects: Effects,
): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const ids = [...new Set(entries.map((e) => e.event.data.id))];
  const strategies = await existingKeys(
    tx,
    'strategies',
    entries.flatMap((e) => (e.event.type === 'STRATEGY_TRADE_OPENED' ? [(e.event.data as Opened).strategyId] : [])),
  );
  const { rows } = await tx.query<{ id: string; strategy_id: string; side: string; entry_price: string; quantity: string; fees: string; entry_time: Date; status: string }>(
    `SELECT id, strategy_id, side, entry_price::text, quantity::text, fees::text, entry_time, status
       FROM strategy_trades WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
    [ids],
  );
  const trades = new Map<string, Trade>(
    rows.map((r) => [r.id, { id: r.id, strategyId: r.strategy_id, side: r.side, entryPrice: r.entry_price, quantity: r.quantity, fees: r.fees, entryTime: r.entry_time, status: r.status, isNew: false }]),
  );
  for (const entry of entries) {
    if (entry.event.type === 'STRATEGY_TRADE_OPENED') {
      const d = entry.event.data as Opened;
      if (!strategies.has(d.strategyId)) rejected.push({ key: entry.key, reason: `unknown strategy ${d.strategyId}` });
      else if (trades.has(d.id)) rejected.push({ key: entry.key, reason: `strategy trade ${d.id} is already open or closed` });
      else {
        trades.set(d.id, { id: d.id, strategyId: d.strategyId, side: d.side, entryPrice: d.entryPrice, quantity: d.quantity, fees: d.fees ?? '0', entryTime: d.entryTime, status: 'open', isNew: true, opened: d });
      }
      continue;
    }
    const d = entry.event.data as Closed;
    const trade = trades.get(d.id);
    if (!trade) {
      rejected.push({ key: entry.key, reason: `strategy trade ${d.id} does not exist` });
      continue;
    }
    if (trade.status === 'closed' || trade.status === 'cancelled') {
      rejected.push({ key: entry.key, reason: `strategy trade ${d.id} is already ${trade.status}` });
      continue;
    }
    if (d.exitTime < trade.entryTime) {
      rejected.push({ key: entry.key, reason: `exit time ${d.exitTime.toISOString()} is before entry time ${trade.entryTime.toISOString()}` });
      continue;
    }
    const fees = d.fees ?? trade.fees;
    const move = new Big(d.exitPrice).minus(trade.entryPrice).times(trade.quantity);
    const pnl = d.pnl ?? (trade.side === 'buy' ? move : move.times(-1)).minus(fees).toFixed();
    const pnlPercent = new Big(pnl).div(new Big(trade.entryPrice).times(trade.quantity)).times(100).toFixed(8);
    trade.status = 'closed';
    trade.close = {
      exitPrice: d.exitPrice,
      exitTime: d.exitTime,
      exitReason: d.exitReason ?? null,
      exitSignal: d.exitSignal ?? null,
      exitTag: d.exitTag ?? null,
      fees,
      pnl,
      pnlPercent,
    };
  }
  const created = [...trades.values()].filter((t) => t.isNew);
  if (created.length) {
    const o = (f: (d: Opened) => unknown) => created.map((t) => f(t.opened!) ?? null);
    await tx.query(
      `INSERT INTO strategy_trades (id, strategy_id, symbol, exchange, side, type, entry_price, quantity, entry_time,
                                    external_order_id, fees, stop_loss_price, take_profit_price, entry_signal, entry_tag, metadata)
       SELECT u.id, u.strategy_id, u.symbol, u.exchange, u.side, coalesce(u.type, 'market'), u.entry_price, u.quantity,
              u.entry_time, u.external_order_id, u.fees, u.stop_loss, u.take_profit, u.entry_signal, u.entry_tag, coalesce(u.metadata, '{}')
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::numeric[],
                     $9::timestamptz[], $10::text[], $11::numeric[], $12::numeric[], $13::numeric[], $14::jsonb[], $15::text[], $16::jsonb[])
              AS u(id, strategy_id, symbol, exchange, side, type, entry_price, quantity, entry_time, external_order_id, fees,
                   stop_loss, take_profit, entry_signal, entry_tag, metadata)`,
      [
        o((d) => d.id), o((d) => d.strategyId), o((d) => d.symbol), o((d) => d.exchange), o((d) => d.side), o((d) => d.type),
        o((d) => d.entryPrice), o((d) => d.quantity), o((d) => d.entryTime), o((d) => d.externalOrderId), o((d) => d.fees ?? '0'),
        o((d) => d.stopLossPrice), o((d) => d.takeProfitPrice), o((d) => d.entrySignal), o((d) => d.entryTag), o((d) => d.metadata),
      ],
    );
  }
  const closed = [...trades.values()].filter((t) => t.close);
  if (closed.length) {
    const c = <K extends keyof NonNullable<Trade['close']>>(k: K) => closed.map((t) => t.close![k]);
    await tx.query(
      `UPDATE strategy_trades t SET exit_price = u.exit_price, exit_time = u.exit_time, exit_reason = u.exit_reason,
              exit_signal = u.exit_signal, exit_tag = u.exit_tag, fees = u.fees, pnl = u.pnl, pnl_percent = u.pnl_percent,
              status = 'closed', updated_at = now()
         FROM unnest($1::text[], $2::numeric[], $3::timestamptz[], $4::text[], $5::jsonb[], $6::text[], $7::numeric[], $8::numeric[], $9::numeric[])
              AS u(id, exit_price, exit_time, exit_reason, exit_signal, exit_tag, fees, pnl, pnl_percent)
        WHERE t.id = u.id`,
      [closed.map((t) => t.id), c('exitPrice'), c('exitTime'), c('exitReason'), c('exitSignal'), c('exitTag'), c('fees'), c('pnl'), c('pnlPercent')],
    );
    await updateCounters(tx, closed.map((t) => ({ id: t.id, strategyId: t.strategyId, pnl: t.close!.pnl, exitTime: t.close!.exitTime })));
    effects.strategies.push(...new Set(closed.map((t) => t.strategyId)));
  }
  return { rejected };
}

/** Decimal places of max_drawdown, the same whichever way it is computed. */
const DRAWDOWN_DP = 12;

/**
 * Seed 002's counters: trades, winners and total P&L move with each close; and (for a strategy
 * with an initial capital) the realized equity's running peak and the deepest fall from it,
 * max_drawdown = min(equity / peak − 1), a fraction ≤ 0, in exit order (docs/ANALYTICS.md). Closes
 * later than every one counted so far extend the running values; a close that exits before one
 * already counted (shards apply in any order) recomputes them from every closed round trip.
 */
async function updateCounters(tx: Queryable, closes: { strategyId: string; pnl: string; exitTime: Date; id: string }[]): Promise<void> {
  const ids = [...new Set(closes.map((c) => c.strategyId))].sort();
  const { rows } = await tx.query<{ id: string; capital: string | null; total_pnl: string; peak: string | null; max_drawdown: string | null; last_exit: Date | null }>(
    `SELECT id, initial_capital::text AS capital, total_pnl::text, peak_equity::text AS peak, max_drawdown::text, last_executed_at AS last_exit
       FROM strategies WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
    [ids],
  );
  const next = new Map(rows.map((r) => [r.id, { n: 0, wins: 0, pnl: new Big(r.total_pnl), capital: r.capital, peak: r.peak, maxDrawdown: r.max_drawdown, lastExit: r.last_exit, inOrder: true }]));
  const ordered = [...closes].sort((a, b) => a.exitTime.getTime() - b.exitTime.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const c of ordered) {
    const s = next.get(c.strategyId)!;
    s.n += 1;
    if (new Big(c.pnl).gt(0)) s.wins += 1;
    s.pnl = s.pnl.plus(c.pnl);
    if (s.lastExit && c.exitTime <= s.lastExit) s.inOrder = false;
    if (!s.lastExit || c.exitTime > s.lastExit) s.lastExit = c.exitTime;
    if (s.capital !== null && s.inOrder) {
      const equity = s.pnl.plus(s.capital);
      const before = new Big(s.peak ?? s.capital);
      const peak = equity.gt(before) ? equity : before;
      const drawdown = equity.div(peak).minus(1).round(DRAWDOWN_DP);
      s.peak = peak.toFixed();
      if (drawdown.lt(s.maxDrawdown ?? 0)) s.maxDrawdown = drawdown.toFixed();
      else s.maxDrawdown ??= '0';
    }
  }
  const list = [...next.entries()];
  await tx.query(
    `UPDATE strategies s SET total_trades = s.total_trades + u.n, winning_trades = s.winning_trades + u.wins, total_pnl = u.pnl,
            peak_equity = u.peak, max_drawdown = u.max_drawdown,
            last_executed_at = greatest(s.last_executed_at, u.last_exit), updated_at = now()
       FROM unnest($1::text[], $2::int[], $3::int[], $4::numeric[], $5::numeric[], $6::numeric[], $7::timestamptz[])
            AS u(id, n, wins, pnl, peak, max_drawdown, last_exit)
      WHERE s.id = u.id`,
    [list.map(([id]) => id), list.map(([, s]) => s.n), list.map(([, s]) => s.wins), list.map(([, s]) => s.pnl.toFixed()),
      list.map(([, s]) => s.peak), list.map(([, s]) => s.maxDrawdown), list.map(([, s]) => s.lastExit)],
  );
  for (const [id, s] of list) if (s.capital !== null && !s.inOrder) await recomputeDrawdown(tx, id, s.capital);
}

/**
 * Recomputes the realized equity's running peak and max drawdown from every closed round trip
 * (archived ones included) in exit order, for the strategy's initial capital (null: no drawdown).
 */
export async function recomputeDrawdown(tx: Queryable, id: string, capital: string | null): Promise<void> {
  await tx.query(
    `WITH trips AS (
       SELECT exit_time, id, pnl FROM strategy_trades WHERE strategy_id = $1 AND status = 'closed' AND pnl IS NOT NULL
       UNION ALL
       SELECT exit_time, id, pnl FROM strategy_trades_archive WHERE strategy_id = $1 AND status = 'closed' AND pnl IS NOT NULL),
     equity AS (SELECT exit_time, id, $2::numeric + sum(pnl) OVER (ORDER BY exit_time, id ROWS UNBOUNDED PRECEDING) AS equity FROM trips),
     peaks AS (SELECT equity, greatest($2::numeric, max(equity) OVER (ORDER BY exit_time, id ROWS UNBOUNDED PRECEDING)) AS peak FROM equity)
     UPDATE strategies SET initial_capital = $2::numeric,
            peak_equity = CASE WHEN $2::numeric IS NULL THEN NULL ELSE (SELECT coalesce(max(peak), $2::numeric) FROM peaks) END,
            max_drawdown = CASE WHEN $2::numeric IS NULL THEN NULL ELSE (SELECT trim_scale(least(0, coalesce(min(round(equity / peak - 1, ${DRAWDOWN_DP})), 0))) FROM peaks) END
      WHERE id = $1`,
    [id, capital],
  );
}
