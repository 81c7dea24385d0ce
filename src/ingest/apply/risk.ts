import Big from 'big.js';
import type { Queryable } from '../../database/types.ts';
import type { Effects, Entry } from './types.ts';

/**
 * Risk limits evaluated as data arrives (docs/RISK.md). The kinds tradestore measures from the
 * stored data, and how: a `max_…` limit is breached when the value goes above it, `min_balance`
 * when the balance goes below it.
 */
export const RISK_KINDS = {
  max_position_value: "Σ |quantity × mark price (else entry price)| of the user's open positions in the scope",
  max_daily_loss: "the loss so far in the UTC day: −(realized P&L of the user's fills + P&L of their strategies' round trips closed today), 0 if none",
  max_drawdown: "the deepest current fall of a strategy's realized equity (capital + P&L) from its peak, as a fraction (0.2 = 20 %)",
  max_orders_per_hour: 'the venue and exchange orders the user created in the last hour',
  min_balance: "the user's balance (available + locked) of the asset named as the limit's symbol",
} as const;
export type RiskKind = keyof typeof RISK_KINDS;
export const isMeasured = (kind: string): kind is RiskKind => kind in RISK_KINDS;

export type RiskLevel = 'ok' | 'warning' | 'critical';
const RANK: Record<RiskLevel, number> = { ok: 0, warning: 1, critical: 2 };

/** The level a value puts a limit at: critical past the limit, warning past `warningRatio` of it. */
export function riskLevel(kind: string, value: string, limit: string, warningRatio: string): RiskLevel {
  const v = new Big(value);
  const l = new Big(limit);
  if (kind === 'min_balance') {
    if (v.lt(l)) return 'critical';
    // Warning when the balance is within the limit divided by the ratio (limit 800, ratio 0.8: below 1000).
    return v.lt(l.div(warningRatio)) ? 'warning' : 'ok';
  }
  if (v.gt(l)) return 'critical';
  return v.gte(l.times(warningRatio)) && v.gt(0) ? 'warning' : 'ok';
}

/** What an event says about the users whose limits it may move. */
export interface RiskSubjects {
  users: Set<string>;
  /** Strategies whose round trips closed (their owners' limits). */
  strategies: Set<string>;
}

export function riskSubjects(entries: Entry[], effects: Effects): RiskSubjects {
  const users = new Set<string>();
  for (const { event } of entries) {
    const d = event.data as { userId?: string };
    if (event.type === 'FILL' || event.type === 'EXCHANGE_ORDER') users.add(d.userId ?? 'system');
    else if (event.type === 'POSITION_UPDATE' || event.type === 'BALANCE_UPDATE' || event.type === 'ORDER_UPDATE') {
      if (d.userId) users.add(d.userId);
    }
  }
  return { users, strategies: new Set(effects.strategies) };
}

interface LimitRow {
  evaluated_at?: Date | null;
  id: string;
  user_id: string;
  limit_type: string;
  symbol: string | null;
  strategy_id: string | null;
  limit_value: string;
  warning_ratio: string;
  action: string;
  level: RiskLevel;
  current_value: string;
}

/** The current value of each measured limit, in one statement. */
async function measure(tx: Queryable, limits: LimitRow[]): Promise<Map<string, string>> {
  const measured = limits.filter((l) => isMeasured(l.limit_type));
  if (!measured.length) return new Map();
  const col = <K extends keyof LimitRow>(k: K) => measured.map((l) => l[k]);
  const { rows } = await tx.query<{ id: string; value: string | null }>(
    `SELECT l.id::text, trim_scale(CASE l.kind
       WHEN 'max_position_value' THEN (SELECT coalesce(sum(abs(p.quantity * coalesce(p.mark_price, p.entry_price))), 0) FROM positions p
                                        WHERE p.user_id = l.user_id AND p.status = 'open' AND (l.symbol IS NULL OR p.symbol = l.symbol)
                                          AND (l.strategy_id IS NULL OR p.strategy_id = l.strategy_id))
       WHEN 'max_daily_loss' THEN greatest(0, -(
              coalesce((SELECT sum(f.realized_pnl) FROM trades_executed f WHERE f.user_id = l.user_id AND f.executed_at >= date_trunc('day', now())
                          AND (l.symbol IS NULL OR f.symbol = l.symbol) AND (l.strategy_id IS NULL OR f.strategy_id = l.strategy_id)), 0)
            + coalesce((SELECT sum(t.pnl) FROM strategy_trades t JOIN strategies s ON s.id = t.strategy_id
                         WHERE s.user_id = l.user_id AND t.status = 'closed' AND t.exit_time >= date_trunc('day', now())
                           AND (l.symbol IS NULL OR t.symbol = l.symbol) AND (l.strategy_id IS NULL OR t.strategy_id = l.strategy_id)), 0)))
       WHEN 'max_drawdown' THEN (SELECT coalesce(max(1 - (s.initial_capital + s.total_pnl) / s.peak_equity), 0) FROM strategies s
                                  WHERE s.user_id = l.user_id AND s.initial_capital IS NOT NULL AND s.peak_equity > 0
                                    AND (l.strategy_id IS NULL OR s.id = l.strategy_id))
       WHEN 'max_orders_per_hour' THEN (SELECT count(*) FROM orders o WHERE l.strategy_id IS NULL AND o.user_id = l.user_id
                                          AND o.created_at > now() - interval '1 hour' AND (l.symbol IS NULL OR o.market = l.symbol))
                                     + (SELECT count(*) FROM exchange_orders e WHERE e.user_id = l.user_id AND e.created_at > now() - interval '1 hour'
                                          AND (l.symbol IS NULL OR e.symbol = l.symbol) AND (l.strategy_id IS NULL OR e.strategy_id = l.strategy_id))
       WHEN 'min_balance' THEN (SELECT coalesce(sum(b.total_balance), 0) FROM balances b WHERE b.user_id = l.user_id AND b.asset = l.symbol)
     END)::text AS value
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS l(id, user_id, kind, symbol, strategy_id)`,
    [col('id'), col('user_id'), col('limit_type'), col('symbol'), col('strategy_id')],
  );
  return new Map(rows.filter((r) => r.value !== null).map((r) => [r.id, r.value!]));
}

/** The users' own limits (seed 003's users.max_position_size and max_daily_loss) as limit rows, where none of that scope exists. */
async function syncAccountLimits(tx: Queryable, users: string[]): Promise<number> {
  const { rowCount } = await tx.query(
    `INSERT INTO risk_limits (user_id, limit_type, limit_value, source)
     SELECT u.id, k.kind, k.value, 'account'
       FROM users u CROSS JOIN LATERAL (VALUES ('max_position_value', u.max_position_size), ('max_daily_loss', u.max_daily_loss)) AS k(kind, value)
      WHERE u.id = ANY($1::text[]) AND k.value IS NOT NULL
     ON CONFLICT ON CONSTRAINT risk_limits_scope_key DO UPDATE SET limit_value = EXCLUDED.limit_value, is_active = true, updated_at = now()
      WHERE risk_limits.source = 'account' AND (risk_limits.limit_value <> EXCLUDED.limit_value OR NOT risk_limits.is_active)`,
    [users],
  );
  return rowCount ?? 0;
}

export interface RaisedRiskEvent {
  id: string;
  userId: string;
  limitId: string;
  limitType: string;
  eventType: 'limit_breach' | 'limit_warning';
  severity: 'warning' | 'critical';
  symbol: string | null;
  strategyId: string | null;
  riskValue: string;
  limitValue: string;
  actionTaken: string;
  triggeredAt: string;
}

/**
 * Evaluates the active limits of the users the batch touched: their current values, their
 * levels, and a risk event for each limit whose level rose (once per breach: a limit that stays
 * breached raises nothing more until it has come back). Returns the events raised; `effects`
 * gets them for publication, and the users whose cached limits are stale.
 */
export async function evaluateRisk(tx: Queryable, subjects: RiskSubjects, effects: Effects): Promise<RaisedRiskEvent[]> {
  if (!subjects.users.size && !subjects.strategies.size) return [];
  const { rows: owners } = subjects.strategies.size
    ? await tx.query<{ user_id: string }>(`SELECT DISTINCT user_id FROM strategies WHERE id = ANY($1::text[]) AND user_id IS NOT NULL`, [[...subjects.strategies]])
    : { rows: [] };
  const users = [...new Set([...subjects.users, ...owners.map((o) => o.user_id)])].sort();
  if (!users.length) return [];
  // The users' limits are locked in one order (by id) before anything writes them: two workers
  // evaluating the same users wait for each other instead of deadlocking.
  const lockLimits = () =>
    tx.query<LimitRow>(
      `SELECT id::text, user_id, limit_type, symbol, strategy_id, limit_value::text, warning_ratio::text, action, level, current_value::text, evaluated_at
         FROM risk_limits WHERE is_active AND user_id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
      [users],
    );
  const locked = await lockLimits();
  // Read again only when the users' own limits added or changed a row (rarely).
  const limits = (await syncAccountLimits(tx, users)) ? (await lockLimits()).rows : locked.rows;
  if (!limits.length) return [];
  return settle(tx, limits, await measure(tx, limits), effects);
}

/** Stores each limit's value and level, and raises an event for each level that rose. */
export async function settle(tx: Queryable, limits: LimitRow[], values: Map<string, string>, effects: Effects): Promise<RaisedRiskEvent[]> {
  const changed: { id: string; value: string; level: RiskLevel }[] = [];
  const raised: Omit<RaisedRiskEvent, 'id' | 'triggeredAt'>[] = [];
  const now = Date.now();
  for (const limit of limits) {
    const value = values.get(limit.id);
    if (value === undefined) continue;
    const level = riskLevel(limit.limit_type, value, limit.limit_value, limit.warning_ratio);
    // A windowed limit's level belongs to its window: yesterday's breach of the day's loss, or an
    // hour-old breach of the orders an hour, does not hide a new one.
    const evaluated = limit.evaluated_at?.getTime() ?? 0;
    const stale = (limit.limit_type === 'max_daily_loss' && evaluated < Math.floor(now / 86_400_000) * 86_400_000)
      || (limit.limit_type === 'max_orders_per_hour' && evaluated < now - 3_600_000);
    const previous: RiskLevel = stale ? 'ok' : limit.level;
    if (level === limit.level && !stale && new Big(value).eq(limit.current_value)) continue;
    changed.push({ id: limit.id, value, level });
    if (RANK[level] > RANK[previous]) {
      raised.push({
        userId: limit.user_id,
        limitId: limit.id,
        limitType: limit.limit_type,
        eventType: level === 'critical' ? 'limit_breach' : 'limit_warning',
        severity: level === 'critical' ? 'critical' : 'warning',
        symbol: limit.symbol,
        strategyId: limit.strategy_id,
        riskValue: value,
        limitValue: limit.limit_value,
        actionTaken: level === 'critical' ? limit.action : 'warn',
      });
    }
  }
  if (changed.length) {
    await tx.query(
      `UPDATE risk_limits l SET current_value = u.value, level = u.level, evaluated_at = now(), updated_at = now()
         FROM unnest($1::bigint[], $2::numeric[], $3::text[]) AS u(id, value, level) WHERE l.id = u.id`,
      [changed.map((c) => c.id), changed.map((c) => c.value), changed.map((c) => c.level)],
    );
    effects.riskLimitUsers.push(...new Set(limits.filter((l) => changed.some((c) => c.id === l.id)).map((l) => l.user_id)));
  }
  if (!raised.length) return [];
  const { rows } = await tx.query<{ id: string; limit_id: string; triggered_at: Date }>(
    `INSERT INTO risk_events (user_id, event_type, severity, symbol, strategy_id, description, details, risk_value, limit_value, action_taken, limit_id)
     SELECT u.user_id, u.event_type, u.severity, u.symbol, u.strategy_id,
            u.limit_type || ' ' || u.risk_value || CASE WHEN u.limit_type = 'min_balance' THEN ' below ' ELSE ' against ' END || u.limit_value,
            jsonb_build_object('limitId', u.limit_id::text, 'limitType', u.limit_type), u.risk_value, u.limit_value, u.action, u.limit_id
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::numeric[], $9::text[], $10::bigint[])
            AS u(user_id, event_type, severity, symbol, strategy_id, limit_type, risk_value, limit_value, action, limit_id)
     RETURNING id::text, limit_id::text, triggered_at`,
    [raised.map((r) => r.userId), raised.map((r) => r.eventType), raised.map((r) => r.severity), raised.map((r) => r.symbol), raised.map((r) => r.strategyId),
      raised.map((r) => r.limitType), raised.map((r) => r.riskValue), raised.map((r) => r.limitValue), raised.map((r) => r.actionTaken), raised.map((r) => r.limitId)],
  );
  // One event per limit at most: matched back by its limit.
  const byLimit = new Map(rows.map((r) => [r.limit_id, r]));
  const events = raised.map((r) => ({ ...r, id: byLimit.get(r.limitId)!.id, triggeredAt: byLimit.get(r.limitId)!.triggered_at.toISOString() }));
  effects.riskEvents.push(...events);
  return events;
}
